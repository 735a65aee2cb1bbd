"""Vendor the Zendesk App Framework SDK into the sidebar app's assets (run by hand, on upgrade).

    python scripts/vendor_zaf_sdk.py [--tarball zendesk_app_framework_sdk-X.Y.Z.tgz]

Without ``--tarball`` it runs ``npm pack zendesk_app_framework_sdk`` in a temporary directory (npm
only fetches the tarball; nothing is installed or built). The npm package ships CommonJS sources
(``lib/*.js``), not a browser build, so this script joins them into one file with a few lines of
``require`` shim and exposes ``window.ZAFClient``, as Zendesk's hosted build does. The output and
the package's LICENSE (Apache-2.0) are committed: packaging the app needs Python only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "imagematch" / "sources" / "zendesk" / "app" / "assets"
MODULES = ["./vendor/native-promise-only", "./utils", "./client", "./index"]


def _pack(workdir: Path) -> Path:
    subprocess.run(["npm", "pack", "zendesk_app_framework_sdk"], cwd=workdir, check=True)
    return next(workdir.glob("zendesk_app_framework_sdk-*.tgz"))


def bundle(package: Path) -> str:
    """One browser script from the unpacked npm ``package`` directory."""
    version = json.loads((package / "package.json").read_text())["version"]
    parts = [
        f"/*! zendesk_app_framework_sdk {version} (npm), Apache-2.0: see zaf_sdk.LICENSE.txt.\n"
        " * Bundled by scripts/vendor_zaf_sdk.py from the package's lib/ (CommonJS). */\n"
        "(function (window) {\n  var defined = {}, cache = {};\n"
        "  function require(name) {\n"
        "    if (!cache[name]) { var module = { exports: {} }; cache[name] = module;\n"
        "      defined[name].call(window, module, module.exports, require); }\n"
        "    return cache[name].exports;\n  }\n"
    ]
    for name in MODULES:
        source = (package / "lib" / f"{name[2:]}.js").read_text()
        parts.append(
            f"  defined[{json.dumps(name)}] = function (module, exports, require) {{\n{source}\n  }};\n"
        )
    parts.append("  window.ZAFClient = require('./index');\n})(window);\n")
    return "".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tarball", type=Path, help="an npm pack tarball (default: npm pack now)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tarball = args.tarball or _pack(work)
        with tarfile.open(tarball) as archive:
            archive.extractall(work / "unpacked", filter="data")
        package = work / "unpacked" / "package"
        (ASSETS / "zaf_sdk.js").write_text(bundle(package))
        (ASSETS / "zaf_sdk.LICENSE.txt").write_text((package / "LICENSE").read_text())
    print(f"wrote {ASSETS / 'zaf_sdk.js'} and its LICENSE")


if __name__ == "__main__":
    main()
