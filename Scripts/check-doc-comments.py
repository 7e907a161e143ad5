"""Fails if a public declaration under Sources lacks a doc comment of its own.

Usage: python3 Scripts/check-doc-comments.py [ROOT]   (ROOT: the repository, default the current folder)
Checks every `public`/`open` declaration (extensions excepted) and every case of a public enum: a `///` line (or the
end of a `/** */` block) must sit right above it, above its attributes if it has any. A line declaring several
cases or properties takes one comment for all. Prints each one missing, FILE:LINE: DECLARATION, and exits 1.
"""
import glob
import re
import sys

MODIFIERS = r"(?:(?:static|final|override|mutating|nonisolated|convenience|required|indirect|lazy|(?:private|fileprivate|internal)\(set\))\s+)*"
DECLARATION = re.compile(r"^\s*(?:@\w+(?:\([^)]*\))?\s+)*(?:public|open)\s+" + MODIFIERS +
                         r"(func|var|let|struct|class|enum|protocol|init|case|typealias|actor|subscript|extension)\b")
ONE_CASE = r"[A-Za-z_]\w*(?:\(.*\))?(?:\s*=\s*[^:]*)?"
ENUM_CASE = re.compile(rf"^(\s*)(?:indirect\s+)?case\s+{ONE_CASE}(?:\s*,\s*{ONE_CASE})*\s*(?://.*)?$")
ENUM = re.compile(r"^(\s*)(?:@\w+\s+)*(public\s+|open\s+)?(?:indirect\s+)?enum\s+\w+")


def documented(lines, index):
    """Whether the declaration at `lines[index]` has a doc comment right above it (attributes may sit between)."""
    above = index - 1
    while above >= 0 and re.match(r"^\s*@\w+", lines[above]):
        above -= 1
    text = lines[above].strip() if above >= 0 else ""
    return text.startswith("///") or text.endswith("*/")


def in_public_enum(lines, index, indent):
    """Whether the enum case at `lines[index]` (indented by `indent`) belongs to a public enum."""
    for above in range(index - 1, -1, -1):
        found = ENUM.match(lines[above])
        if found and len(found[1]) < indent:
            return bool(found[2])
    return False


def missing(root):
    for path in sorted(glob.glob(f"{root}/Sources/**/*.swift", recursive=True)):
        lines = open(path, encoding="utf-8").read().split("\n")
        for index, line in enumerate(lines):
            declaration = DECLARATION.match(line)
            if declaration and declaration[1] != "extension":
                public = True
            else:
                case = ENUM_CASE.match(line)
                public = bool(case) and not line.rstrip().endswith(":") and in_public_enum(lines, index, len(case[1]))
            if public and not documented(lines, index):
                yield f"{path}:{index + 1}: {line.strip()}"


if __name__ == "__main__":
    found = list(missing(sys.argv[1] if len(sys.argv) > 1 else "."))
    for entry in found:
        print(entry)
    if found:
        sys.exit(f"{len(found)} public declarations without a doc comment (add a /// line above each)")
    print("every public declaration has a doc comment")
