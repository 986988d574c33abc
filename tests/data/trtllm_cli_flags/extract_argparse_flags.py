"""Print the CLI flag names an upstream TensorRT-LLM script defines, one a line.

Usage: python extract_argparse_flags.py <source.py> [<source.py> ...] > <script>.txt

Reads sources statically (ast), never imports them: every string literal starting
with "--" passed positionally to an ``add_argument`` call, plus "--<name>" for each
entry of a module-level ``cli_plugin_args`` list (tensorrt_llm/plugin/plugin.py
builds the trtllm-build plugin flags from that list in add_plugin_argument).
"""

import ast
import sys


def flags_in_source(text: str) -> set[str]:
    tree = ast.parse(text)
    flags: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add_argument"
        ):
            for arg in node.args:
                if (
                    isinstance(arg, ast.Constant)
                    and isinstance(arg.value, str)
                    and arg.value.startswith("--")
                ):
                    flags.add(arg.value)
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "cli_plugin_args" for t in node.targets)
            and isinstance(node.value, (ast.List, ast.Tuple))
        ):
            for elt in node.value.elts:
                if isinstance(elt, ast.Constant) and isinstance(elt.value, str):
                    flags.add("--" + elt.value)
    return flags


def main(paths: list[str]) -> None:
    flags: set[str] = set()
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            flags |= flags_in_source(handle.read())
    for flag in sorted(flags):
        print(flag)


if __name__ == "__main__":
    main(sys.argv[1:])
