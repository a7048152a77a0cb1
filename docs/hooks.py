"""MkDocs hook: the pages show the committed files of results/ (plots), which lie outside docs/,
by the paths from the page that GitHub reads too (`![pareto](../results/benchmark/pareto.png)`)."""
import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).parents[1]
# A link that climbs out of docs/ into results/: `](../results/...)`. A page of results/ (.md) is
# left for --strict to refuse: MkDocs would render it as a page of the site.
RESULT = re.compile(r"\]\(((?:\.\./)+results/[^)\s]+(?<!\.md))\)")


def in_checkout(page_uri: str, link: str) -> str:
    """The link's path from the checkout's root, e.g. results/benchmark/pareto.png."""
    return posixpath.normpath(posixpath.join("docs", posixpath.dirname(page_uri), link))


def on_files(files, config):
    """Every committed file of results/ that a page links to, added to the site at its path from
    the checkout's root (site/results/...); a link to a file that is not there is left out, and
    --strict names it."""
    for page in files.documentation_pages():
        for link in RESULT.findall(page.content_string):
            path = in_checkout(page.src_uri, link)
            there = path.startswith("results/") and (ROOT / path).is_file()
            if there and files.get_file_from_path(path) is None:
                files.append(File.generated(config, path, abs_src_path=str(ROOT / path)))
    return files


def on_page_markdown(markdown, page, config, files):
    """The links to results/ as the site lays it out: results/... beside the pages."""
    where = posixpath.dirname(page.file.src_uri) or "."

    def site_link(match: re.Match) -> str:
        path = in_checkout(page.file.src_uri, match[1])
        if files.get_file_from_path(path) is None:
            return match[0]
        return f"]({posixpath.relpath(path, where)})"

    return RESULT.sub(site_link, markdown)
