"""Make the dashboard that `asv publish` wrote into html/ open with no network.

It also adds a tab linking the study's charts (html/charts/, drawn by tools/charts.py).
asv's index.html loads jQuery, flot, bootstrap and friends from CDNs. This copies the same releases from
tools/dashboard_vendor/ into html/vendor/ and points index.html at them. A CDN address it does not know
(a newer asv with another library) is an error, so the dashboard never silently goes back online-only.

    python tools/offline_dashboard.py [--html html]
"""
import argparse
import os
import re
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENDOR = os.path.join(ROOT, "tools", "dashboard_vendor")

# The end of each CDN address asv uses -> the vendored file, relative to html/.
LOCAL = {
    "/jquery-3.3.1.min.js": "vendor/jquery-3.3.1.min.js",
    "/flot/0.8.3/jquery.flot.min.js": "vendor/jquery.flot-0.8.3.js",
    "/flot/0.8.3/jquery.flot.time.min.js": "vendor/jquery.flot.time-0.8.3.js",
    "/flot/0.8.3/jquery.flot.selection.min.js": "vendor/jquery.flot.selection-0.8.3.js",
    "/flot/0.8.3/jquery.flot.categories.min.js": "vendor/jquery.flot.categories-0.8.3.js",
    "/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js": "vendor/jquery.flot.orderBars-1.0.0.js",
    "/stupidtable/1.0.1/stupidtable.min.js": "vendor/stupidtable-1.1.3.min.js",
    "/blueimp-md5/2.19.0/js/md5.min.js": "vendor/md5-2.19.0.min.js",
    "/bootstrap@3.1.1/dist/js/bootstrap.min.js": "vendor/bootstrap-3.1.1.min.js",
    "/bootstrap@3.1.1/dist/css/bootstrap.min.css": "vendor/css/bootstrap-3.1.1.min.css",
}
EXTERNAL_TAG = re.compile(r'<(script|link)\b[^>]*?\b(src|href)="(https?://[^"]+)"[^>]*>')
# Subresource-integrity and CORS attributes describe the CDN copies; local files need neither.
CDN_ATTRIBUTES = re.compile(r'\s+(integrity|crossorigin|referrerpolicy)="[^"]*"')


def localise(html):
    """index.html's text with every CDN library replaced by its vendored copy."""
    def replace(match):
        tag, attribute, url = match.groups()
        if tag == "link" and 'rel="stylesheet"' not in match.group(0):
            return match.group(0)  # a plain hyperlink, not a resource the page loads
        local = next((path for suffix, path in LOCAL.items() if url.endswith(suffix)), None)
        if local is None:
            raise SystemExit("offline_dashboard: no vendored copy of {} (add it to tools/dashboard_vendor)".format(url))
        return CDN_ATTRIBUTES.sub("", match.group(0).replace(url, local))
    return EXTERNAL_TAG.sub(replace, html)


REGRESSIONS_TAB = '<li id="nav-li-regressions"><a href="#/regressions">Regressions</a></li>'
CHARTS_TAB = '<li id="nav-li-charts"><a href="charts/index.html">Study charts</a></li>'


def link_charts(html):
    """index.html's text with a navigation tab to html/charts/ (tools/charts.py), after asv's Regressions tab."""
    if CHARTS_TAB in html:
        return html
    if REGRESSIONS_TAB not in html:
        raise SystemExit("offline_dashboard: asv's index.html has no Regressions tab to put the charts' tab after")
    return html.replace(REGRESSIONS_TAB, REGRESSIONS_TAB + "\n\t" + CHARTS_TAB)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", default=os.path.join(ROOT, "html"))
    args = parser.parse_args(argv)
    index = os.path.join(args.html, "index.html")
    if not os.path.exists(index):
        sys.exit("offline_dashboard: {} not found; run `asv publish` first".format(index))
    with open(index) as f:
        html = link_charts(localise(f.read()))
    target = os.path.join(args.html, "vendor")
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(VENDOR, target, ignore=shutil.ignore_patterns("README.md"))
    with open(index, "w") as f:
        f.write(html)


if __name__ == "__main__":
    main()
