r"""Regenerate trtllm_oci/data/backend_parameters.json: which config.pbtxt parameters the TensorRT-LLM C++
backend reads without a fallback, per backend release, extracted from the backend's own C++ source.

Developer tool, not shipped. Sources are laid out as <src_root>/<dir>/<file name>, and <src_root>/sources.json
(a copy of tools/backend_parameter_sources.json) maps each release id to its "dir", upstream "repo"/"ref"/
"commit" and the "files" read there. From a clone of triton-inference-server/tensorrtllm_backend:

    python - <<'EOF'
    import json, pathlib, subprocess
    sources = json.load(open("tools/backend_parameter_sources.json"))
    for s in sources.values():
        if s["repo"] != "triton-inference-server/tensorrtllm_backend":
            continue
        for f in s["files"]:
            out = pathlib.Path("SRC", s["dir"], pathlib.PurePosixPath(f).name)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(subprocess.check_output(["git", "-C", "BE", "show", f"{s['commit']}:{f}"]))
    EOF

and the NVIDIA/TensorRT-LLM files named for 1.2 saved under SRC/<dir>/ (read them at the named commits);
then `cp tools/backend_parameter_sources.json SRC/sources.json` and
`python tools/extract_backend_parameters.py SRC trtllm_oci/data/backend_parameters.json`.

How a read is classified. The backend reads parameters with `ModelState::GetParameter<T>(name)`, which throws
"Cannot find parameter with name: ..." when the key is absent (model_state.cc); a read has a fallback only
where a `try` around it has a `catch` that carries on. So, per `GetParameter<...>("key")` call:

* optional: some enclosing `try` has a catch handler that neither throws, TLLM_THROWs, TLLM_CHECKs nor returns
  an error;
* required_when: the read sits under an `if` (or its catch throws only under an `if`), so the key is needed
  only in that case (lookahead decoding, orchestrator mode without spawned processes);
* required: neither; the model fails to load without the key. A read inside a helper counts through its
  call sites: the helper's reads are optional when every call of the helper is itself behind a fallback.

For each required string key the tool also records which values the source itself treats as "not set"
(`x.empty()`, `x == "${key}"`), so the assembler can write such a value where it has no real one; for each
optional key, the initializer of the variable the read assigns (the backend's default when the key is absent).
Consecutive releases of one repository with the same result collapse into one entry (source.same_in).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

_CALL = re.compile(r"\bGetParameter\s*<")
_THROWING = re.compile(r"\b(throw|TLLM_THROW|TLLM_CHECK|TLLM_CHECK_WITH_INFO)\b")
_ERROR_RETURN = re.compile(r"\breturn\b[^;]*(Error|nullptr\s*;)")
_CONTROL = ("if", "for", "while", "switch")


def mask(text: str) -> str:
    """Comments become spaces and string/char literal contents become '_', keeping every offset and newline,
    so braces and keywords can be found by position in the masked text and read back from the original."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out[i:j] = " " * (j - i)
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out[i:j] = [ch if ch == "\n" else " " for ch in text[i:j]]
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out[i + 1 : j] = "_" * (j - i - 1)
            i = j + 1
        else:
            i += 1
    return "".join(out)


@dataclass
class Block:
    open: int
    close: int
    kind: str  # "try", "catch", "if", "else", "loop", "function", "other"
    head: str  # the code before "{" that introduces the block (condition, signature, ...)
    name: str | None = None  # function name for kind == "function"
    parent: Block | None = None
    handlers: list[Block] = field(default_factory=list)  # catch blocks of a try


def _matching_paren_start(masked: str, close: int) -> int:
    depth = 0
    for i in range(close, -1, -1):
        if masked[i] == ")":
            depth += 1
        elif masked[i] == "(":
            depth -= 1
            if depth == 0:
                return i
    return 0


def _initializer_separator(before: str) -> bool:
    """Whether `before` ends with the ':' or ',' of a member-initializer list (not `public:` or `a::b`)."""
    return bool(re.search(r"(?<!:)[:,]\s*$", before)) and not re.search(r"\b(public|private|protected)\s*:\s*$", before)


def _classify(masked: str, text: str, brace: int) -> tuple[str, str, str | None]:
    before = masked[:brace].rstrip()
    if re.search(r"\btry$", before):
        return "try", "try", None
    if re.search(r"\belse$", before):
        return "else", "else", None
    if before.endswith(")") or re.search(r"\)\s*(const|noexcept|override)\s*$", before):
        close = before.rfind(")")
        start = _matching_paren_start(masked, close)
        keyword = re.search(r"([\w:~]+)\s*$", masked[:start])
        word = keyword.group(1) if keyword else ""
        # A constructor's member initializers (`Ctor(args) : a_(x), b_(y) {`): walk back to the signature.
        while keyword and _initializer_separator(masked[: keyword.start()]):
            close = masked.rfind(")", 0, keyword.start())
            start = _matching_paren_start(masked, close)
            keyword = re.search(r"([\w:~]+)\s*$", masked[:start])
            word = keyword.group(1) if keyword else ""
        head = " ".join(text[start + 1 : close].split())
        if word == "catch":
            return "catch", head, None
        if word in ("if", "switch"):
            return "if", head, None
        if word in ("for", "while"):
            return "loop", head, None
        if word and not masked[: start].rstrip().endswith(("]", "=")):
            return "function", " ".join(text[max(0, start - 120) : close + 1].split()), word.split("::")[-1]
    return "other", "", None


def parse_blocks(text: str) -> tuple[str, list[Block]]:
    masked = mask(text)
    blocks: list[Block] = []
    stack: list[Block] = []
    for i, c in enumerate(masked):
        if c == "{":
            kind, head, name = _classify(masked, text, i)
            block = Block(i, -1, kind, head, name, stack[-1] if stack else None)
            blocks.append(block)
            stack.append(block)
        elif c == "}" and stack:
            stack.pop().close = i
    # A try's handlers are the catch blocks that follow its closing brace directly, one after another.
    by_open = {b.open: b for b in blocks}
    for block in blocks:
        if block.kind != "try":
            continue
        end = block.close
        while True:
            rest = masked[end + 1 :]
            m = re.match(r"\s*catch\s*\(", rest)
            if not m:
                break
            brace = masked.index("{", end + 1 + m.end())
            handler = by_open[brace]
            block.handlers.append(handler)
            end = handler.close
    return masked, blocks


def _enclosing(blocks: list[Block], pos: int) -> list[Block]:
    """Innermost first."""
    inside = [b for b in blocks if b.open < pos < b.close]
    return sorted(inside, key=lambda b: b.open, reverse=True)


def _handler_outcome(masked: str, text: str, blocks: list[Block], handler: Block) -> tuple[str, str | None]:
    """("fallback", None), ("fails", None) or ("fails_when", condition) for one catch handler."""
    body = masked[handler.open + 1 : handler.close]
    inner = [b for b in blocks if handler.open < b.open and b.close < handler.close]
    conditional_failure = None
    for m in list(_THROWING.finditer(body)) + list(_ERROR_RETURN.finditer(body)):
        at = handler.open + 1 + m.start()
        guards = [b for b in inner if b.open < at < b.close and b.kind in ("if", "else")]
        if not guards:
            return "fails", None
        conditional_failure = guards[-1].head if guards[-1].kind == "if" else f"else of {guards[-1].head}"
    if conditional_failure:
        return "fails_when", conditional_failure
    return "fallback", None


@dataclass
class Read:
    key: str
    cpp_type: str
    status: str  # optional | required | required_when
    conditions: list[str]
    where: str


def _call_argument(masked: str, text: str, after_lt: int) -> tuple[str, str, int] | None:
    """(template type, argument text, offset of the '(') for the call whose '<' ends at after_lt."""
    depth, i = 1, after_lt
    while depth and i < len(masked):
        depth += {"<": 1, ">": -1}.get(masked[i], 0)
        i += 1
    cpp_type = " ".join(text[after_lt : i - 1].split())
    rest = masked[i:]
    m = re.match(r"\s*\(", rest)
    if not m:
        return None
    paren = i + m.end() - 1
    close = masked.index(")", paren)
    return cpp_type, text[paren + 1 : close].strip(), paren


def _resolve_name(argument: str, text: str, masked: str, pos: int) -> str | None:
    literal = re.fullmatch(r'"([^"]*)"', argument)
    if literal:
        return literal.group(1)
    if re.fullmatch(r"\w+", argument):
        assignments = list(re.finditer(rf"\b{argument}\s*=\s*\"([^\"]*)\"", text[:pos]))
        if assignments and masked[assignments[-1].start()] != " ":
            return assignments[-1].group(1)
    return None


class SourceSet:
    def __init__(self, files: dict[str, str]):
        self.files = {name: (text, *parse_blocks(text)) for name, text in files.items()}

    def _status_at(self, name: str, pos: int, depth: int = 0) -> tuple[str, list[str]]:
        text, masked, blocks = self.files[name]
        conditions: list[str] = []
        for block in _enclosing(blocks, pos):
            if block.kind == "try":
                outcomes = [_handler_outcome(masked, text, blocks, h) for h in block.handlers]
                if any(o == "fallback" for o, _ in outcomes):
                    return "optional", []
                conditions += [c for o, c in outcomes if o == "fails_when" and c]
                if any(o == "fails_when" for o, _ in outcomes):
                    return "required_when", conditions
            elif block.kind in ("if", "loop"):
                conditions.append(block.head)
            elif block.kind == "else":
                conditions.append("else branch")
            elif block.kind == "function":
                return self._through_callers(block.name, conditions, depth)
        return ("required_when", conditions) if conditions else ("required", [])

    def _through_callers(self, function: str | None, conditions: list[str], depth: int) -> tuple[str, list[str]]:
        sites = self._call_sites(function) if function and depth < 6 else []
        if not sites:
            return ("required_when", conditions) if conditions else ("required", [])
        statuses = [self._status_at(n, p, depth + 1) for n, p in sites]
        if all(s == "optional" for s, _ in statuses):
            return "optional", []
        if any(s == "required" for s, _ in statuses) and not conditions:
            return "required", []
        merged = conditions + [c for s, cs in statuses if s == "required_when" for c in cs]
        return "required_when", merged

    def _call_sites(self, function: str) -> list[tuple[str, int]]:
        sites = []
        for name, (_, masked, blocks) in self.files.items():
            for m in re.finditer(rf"(?<![\w:~])(?:\w+::)*{re.escape(function)}\s*\(", masked):
                defining = [b for b in blocks if b.kind == "function" and b.name == function]
                is_definition = any(b.open > m.start() and masked[m.end() : b.open].count(";") == 0 for b in defining)
                if not is_definition:
                    sites.append((name, m.start()))
        return sites

    def reads(self) -> list[Read]:
        found: list[Read] = []
        for name, (text, masked, blocks) in self.files.items():
            for m in _CALL.finditer(masked):
                parsed = _call_argument(masked, text, m.end())
                if parsed is None:
                    continue
                cpp_type, argument, paren = parsed
                functions = [b for b in _enclosing(blocks, m.start()) if b.kind == "function"]
                if not functions:
                    continue  # a declaration
                if functions[0].name == "GetParameter":
                    continue  # the accessor's own specializations
                key = _resolve_name(argument, text, masked, m.start())
                if key is None:
                    raise SystemExit(f"{name}:{text.count(chr(10), 0, m.start()) + 1}: cannot resolve key {argument!r}")
                status, conditions = self._status_at(name, m.start())
                line = text.count("\n", 0, m.start()) + 1
                found.append(Read(key, cpp_type, status, conditions, f"{name}:{line} {functions[0].name}"))
        return found

    def _function_body(self, read: Read) -> tuple[str, int]:
        name, rest = read.where.split(":", 1)
        text, _, blocks = self.files[name]
        line = int(rest.split()[0])
        start = sum(len(x) + 1 for x in text.split("\n")[: line - 1])
        function = next(b for b in _enclosing(blocks, start + 1) if b.kind == "function")
        return text[function.open : function.close], start - function.open

    def default(self, read: Read) -> str | None:
        """The C++ initializer of the variable the read assigns (`bool enableKVCacheReuse = true;` -> "true"),
        i.e. what the backend uses when the key is absent; None when the source has no such declaration."""
        body, offset = self._function_body(read)
        m = re.search(rf"(\w+)\s*=\s*model_state_->GetParameter<[^>]*(?:>[^>(]*)*>\(\s*\"{read.key}\"", body)
        if not m:
            return None
        declarations = list(re.finditer(rf"[\w:<>]+\s+{m.group(1)}\s*=\s*([^;]+);", body[: m.start()]))
        return " ".join(declarations[-1].group(1).split()) if declarations else None

    def unset_values(self, read: Read) -> list[str]:
        """Values the source treats as "not set" for a string key: "" (x.empty()) and "${key}"."""
        body, _ = self._function_body(read)
        m = re.search(rf"(\w+)\s*=\s*model_state_->GetParameter<std::string>\(\"{read.key}\"\)", body)
        if not m:
            return []
        variable = m.group(1)
        values = []
        if re.search(rf"\b{variable}\.empty\(\)", body):
            values.append("")
        if f'{variable} == "${{{read.key}}}"' in body or f'{variable} != "${{{read.key}}}"' in body:
            values.append(f"${{{read.key}}}")
        return values


def extract(files: dict[str, str]) -> dict:
    sources = SourceSet(files)
    by_key: dict[str, dict] = {}
    for read in sources.reads():
        entry = by_key.setdefault(read.key, {"type": read.cpp_type, "status": read.status, "where": [], "when": []})
        entry["where"].append(read.where)
        rank = {"optional": 0, "required_when": 1, "required": 2}
        if rank[read.status] > rank[entry["status"]]:
            entry["status"] = read.status
        entry["when"] += [c for c in read.conditions if c not in entry["when"]]
        if read.status == "required" and read.cpp_type == "std::string":
            entry["unset_values"] = sources.unset_values(read)
        if "default" not in entry or entry["default"] is None:
            entry["default"] = sources.default(read)
    required = {
        k: {"type": v["type"], "where": v["where"], "unset_values": v.get("unset_values", [])}
        for k, v in sorted(by_key.items())
        if v["status"] == "required"
    }
    required_when = {
        k: {"type": v["type"], "where": v["where"], "when": v["when"]}
        for k, v in sorted(by_key.items())
        if v["status"] == "required_when"
    }
    optional = {
        k: {"type": v["type"], "default": v["default"]} for k, v in sorted(by_key.items()) if v["status"] == "optional"
    }
    return {"required": required, "required_when": required_when, "optional": optional}


def main(src_root: Path, out_path: Path) -> None:
    sources = json.loads((src_root / "sources.json").read_text())
    releases: dict = {}
    previous = None
    for release_id, source in sources.items():
        files = {
            Path(f).name: (src_root / source["dir"] / Path(f).name).read_text(encoding="utf-8")
            for f in source["files"]
        }
        result = extract(files)
        comparable = {
            "required": {k: {**v, "where": None} for k, v in result["required"].items()},
            "required_when": {k: {**v, "where": None} for k, v in result["required_when"].items()},
            "optional": result["optional"],
        }
        last = releases[next(reversed(releases))] if releases else None
        if comparable == previous and last is not None and last["source"]["repo"] == source["repo"]:
            last["source"].setdefault("same_in", []).append({"ref": source["ref"], "commit": source["commit"]})
            continue
        previous = comparable
        public_source = {k: v for k, v in source.items() if k != "dir"}
        releases[release_id] = {"source": public_source, **result}
    doc = {
        "comment": "Generated by tools/extract_backend_parameters.py from the C++ sources named in each 'source'; "
        "do not edit by hand. Keys are the first TRT-LLM version of each result. required: read with "
        "GetParameter and no fallback (the model fails to load without the key); required_when: only under "
        "the condition given; unset_values: values the source itself treats as not set; optional[key].default: "
        "the C++ initializer the backend uses when the key is absent (null where the source declares none).",
        "releases": releases,
    }
    out_path.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
