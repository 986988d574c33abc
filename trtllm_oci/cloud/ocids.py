"""OCIDs checked against what they must name: the resource type, the realm and the region of the target.

Form (https://docs.oracle.com/en-us/iaas/Content/General/Concepts/identifiers.htm):
`ocid1.<resource type>.<realm>.[region][.future use].<unique id>`; tenancy and compartment OCIDs have an empty
region. The region segment is the region key (`iad`) or, for some newer resources, the region identifier.
Realms per region come from the SDK (oci.regions.REGION_REALMS).
"""

from __future__ import annotations

from collections.abc import Iterable

import oci.regions

from trtllm_oci.cloud.errors import DeploymentLimitError

_KEY_OF = {long: short for short, long in oci.regions.REGIONS_SHORT_NAMES.items()}


def check_ocid(value: str, field: str, *, types: Iterable[str], region: str, regional: bool = True) -> None:
    """Raise DeploymentLimitError naming `field` when `value` is not an OCID of `types` in `region`'s realm/region."""
    kinds = tuple(types)
    parts = (value or "").split(".")
    if len(parts) < 5 or parts[0] != "ocid1" or not parts[-1]:
        raise DeploymentLimitError(
            f"{field} {value!r} is not an OCID (ocid1.<type>.<realm>.<region>.<id>); copy it from the Console or "
            "`oci ... get`.")
    kind, realm, where = parts[1], parts[2], parts[3]
    if kind not in kinds:
        raise DeploymentLimitError(
            f"{field} {value!r} is the OCID of a {kind}, not of a {' or '.join(kinds)}; use the OCID of the "
            f"{kinds[0]}.")
    expected_realm = oci.regions.REGION_REALMS.get(region)
    if expected_realm and realm != expected_realm:
        raise DeploymentLimitError(
            f"{field} {value!r} belongs to realm {realm}, but target.region {region} is in realm {expected_realm}; "
            "the resource and the deployment must be in the same realm.")
    if regional and where and where not in (region, _KEY_OF.get(region, region)):
        raise DeploymentLimitError(
            f"{field} {value!r} is in region {where}, not in target.region {region} "
            f"({_KEY_OF.get(region, '?')}); use the {kinds[0]} of {region} or change target.region.")
