"""The recorder package, built exactly as `azd deploy` builds and uploads it (scripts/azd/hooks.py,
predeploy), meets what its installer expects. The expectations are read from the installer itself
(recorder_vm/deploy/install.ps1, parsed with tree-sitter-powershell), not listed here by hand:

- files: every path it joins onto `$PackageRoot`, and every script its helper scripts run beside them;
- hashes: the package's manifest matches its files; the requirements lock pins every wheel by SHA-256
  for the VM's platform and covers the pins of recorder_vm/requirements.txt; the runtimes it downloads are
  pinned by SHA-256 (the values of Microsoft's winget manifests);
- entry points: every module it runs with `-m`, the module the Windows service runs, and the installer
  the scale set's bootstrap runs.
A package from before this issue (the installer looking for `vendor\\python-3.11.9-amd64.exe`, which no
package ever contained) fails the same check.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

from recorder_vm.deploy.windows_service import recorder_command
from scripts.azd import hooks
from scripts.lock_recorder_requirements import pinned_requirements
from tests.infra.bicep_tree import REPO, Bicep, value
from tests.infra.powershell import Script

DEPLOY = REPO / "recorder_vm" / "deploy"
INSTALL = Script((DEPLOY / "install.ps1").read_text())
# Modules install.ps1 runs that come with Python itself or with pip, not from the package.
STANDARD_MODULES = {"venv", "pip"}
# The VM: CPython 3.11 on Windows Server x64 (the wheel tags pip accepts there).
VM_TAGS = set(cpython_tags((3, 11), abis=["cp311"], platforms=["win_amd64"])) | set(
    compatible_tags((3, 11), "cp311", platforms=["win_amd64"])
)
# python.org's python-3.11.9-amd64.exe, as Microsoft's winget manifest pins it
# (microsoft/winget-pkgs manifests/p/Python/Python/3/11/3.11.9/Python.Python.3.11.installer.yaml).
PYTHON_INSTALLER_SHA256 = "5EE42C4EEE1E6B4464BB23722F90B45303F79442DF63083F05322F1785F5FDDE"


class Uploads:
    """Stands in for az: keeps the bytes predeploy uploads (`az storage blob upload --file <zip>`)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def __call__(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        if list(args[:4]) == ["az", "storage", "blob", "upload"]:
            self.blobs[args[args.index("--name") + 1]] = Path(args[args.index("--file") + 1]).read_bytes()
        out = "false\n" if list(args[:4]) == ["az", "storage", "blob", "exists"] else ""
        return subprocess.CompletedProcess(list(args), 0, out, "")


def deployed_package(repo: Path = REPO) -> tuple[str, zipfile.ZipFile]:
    """The zip predeploy uploads for this repository, and its blob name."""
    env = {
        "AZURE_SUBSCRIPTION_ID": "99999999-8888-7777-6666-555555555555",
        "RUNTIME_STORAGE_ACCOUNT_NAME": "strtabc",
        "RECORDER_PACKAGES_CONTAINER": "recorder-packages",
    }
    uploads = Uploads()
    assert hooks.predeploy(env, uploads, repo) == 0
    ((blob, data),) = uploads.blobs.items()
    return blob, zipfile.ZipFile(io.BytesIO(data))


@pytest.fixture(scope="module")
def package() -> zipfile.ZipFile:
    return deployed_package()[1]


def _zip_path(windows_path: str) -> str:
    return windows_path.replace("\\", "/")


def missing_files(script: Script, package: zipfile.ZipFile) -> list[str]:
    """Paths the installer joins onto $PackageRoot that the package does not contain."""
    names = set(package.namelist())
    return [path for path in script.joined_paths("$PackageRoot") if _zip_path(path) not in names]


def test_the_package_has_every_file_the_installer_joins_onto_the_package_root(package: zipfile.ZipFile) -> None:
    expected = INSTALL.joined_paths("$PackageRoot")
    assert len(expected) >= 5, expected  # the extraction found the installer's paths
    assert missing_files(INSTALL, package) == []


def test_an_installer_that_expects_a_file_no_package_holds_is_caught(package: zipfile.ZipFile) -> None:
    # The installer before issue 16: Python from the package, which the package builder never put there.
    old = Script(
        "$PythonVersion = '3.11.9'\n"
        "$installer = Join-Path $PackageRoot ('vendor\\python-{0}-amd64.exe' -f $PythonVersion)\n"
    )
    assert missing_files(old, package) == ["vendor\\python-3.11.9-amd64.exe"]


def test_the_helper_scripts_find_what_they_run_beside_them(package: zipfile.ZipFile) -> None:
    names = set(package.namelist())
    for script_path in sorted(DEPLOY.glob("*.ps1")):
        script = Script(script_path.read_text())
        assert script.problems() == [], script_path.name
        for path in script.joined_paths("$PSScriptRoot"):
            assert f"recorder_vm/deploy/{_zip_path(path)}" in names, (script_path.name, path)


def test_the_manifest_lists_every_file_with_its_sha256(package: zipfile.ZipFile) -> None:
    manifest = json.loads(package.read(hooks.PACKAGE_MANIFEST))["files"]
    files = set(package.namelist()) - {hooks.PACKAGE_MANIFEST}
    assert set(manifest) == files
    for name, digest in manifest.items():
        assert hashlib.sha256(package.read(name)).hexdigest() == digest, name


def _lock_entries(text: str) -> list[tuple[str, str, str, str]]:
    """(wheel file, name, version, sha256) of each locked wheel."""
    return re.findall(r"# (\S+\.whl)\n(\S+)==(\S+) \\\n    --hash=sha256:([0-9a-f]{64})", text)


def test_the_lock_pins_every_wheel_for_the_vm_by_hash(package: zipfile.ZipFile) -> None:
    text = package.read("recorder_vm/requirements.lock").decode()
    entries = _lock_entries(text)
    requirement_lines = [line for line in text.splitlines() if line and not line.startswith(("#", " "))]
    assert len(entries) == len(requirement_lines) > 20
    for wheel, name, version, _ in entries:
        parsed_name, parsed_version, _, tags = parse_wheel_filename(wheel)
        assert (canonicalize_name(parsed_name), str(parsed_version)) == (canonicalize_name(name), version)
        assert tags & VM_TAGS, f"{wheel} does not install on Windows x64 CPython 3.11"
    locked = {canonicalize_name(name): version for _, name, version, _ in entries}
    for requirement in pinned_requirements():  # requirements.txt, markers evaluated for Windows
        pinned = next(iter(requirement.specifier)).version
        assert locked.get(canonicalize_name(requirement.name)) == pinned, requirement
    assert {"pythonnet", "pywin32", "clr-loader"} <= set(locked)  # the Windows-only ones and their deps


def test_the_installer_installs_the_lock_with_hashes_required() -> None:
    text = (DEPLOY / "install.ps1").read_text()
    assert "'--require-hashes', '--no-deps', '--only-binary=:all:', '-r', $lock" in text
    assert "recorder_vm\\requirements.lock" in INSTALL.joined_paths("$PackageRoot")


def test_every_downloaded_runtime_is_pinned_by_sha256_and_signer() -> None:
    artifacts = {
        name: INSTALL.hashtable(name)
        for name in ("PythonInstaller", "DotNetRuntimeInstaller", "AspNetCoreRuntimeInstaller", "VCRedistInstaller")
    }
    for name, artifact in artifacts.items():
        assert artifact["Url"].startswith("https://"), name
        assert re.fullmatch(r"[0-9A-F]{64}", artifact["Sha256"]), name
        assert artifact["Signer"], name
    values = INSTALL.string_values()
    assert artifacts["PythonInstaller"]["Sha256"] == PYTHON_INSTALLER_SHA256
    assert (
        f"/{values['PythonVersion']}/python-{values['PythonVersion']}-amd64.exe" in artifacts["PythonInstaller"]["Url"]
    )
    for name in ("DotNetRuntimeInstaller", "AspNetCoreRuntimeInstaller"):
        assert f"-{values['DotNetVersion']}-win-x64.exe" in artifacts[name]["Url"], name
    # Visual Studio's download URLs carry the file's SHA-256 in their path.
    assert artifacts["VCRedistInstaller"]["Sha256"] in artifacts["VCRedistInstaller"]["Url"]


def test_the_dotnet_runtime_config_matches_the_runtime_installed(package: zipfile.ZipFile) -> None:
    values = INSTALL.string_values()
    config = json.loads(package.read(_zip_path(values["RuntimeConfig"])))["runtimeOptions"]
    major = values["DotNetVersion"].split(".")[0]
    assert config["tfm"] == f"net{major}.0"
    frameworks = {f["name"]: f["version"] for f in config["frameworks"]}
    assert frameworks.keys() == {"Microsoft.NETCore.App", "Microsoft.AspNetCore.App"}
    assert all(version.split(".")[0] == major for version in frameworks.values())
    # The media library's assembly is taken from a .NET (core) lib folder of that runtime or older.
    assert INSTALL.string_values()["MediaLibraryVersion"]
    assert f"'net{major}.0'" in (DEPLOY / "install.ps1").read_text()


def _module_file(module: str, names: set[str]) -> bool:
    path = module.replace(".", "/")
    return f"{path}.py" in names or f"{path}/__main__.py" in names


def test_every_module_the_installer_and_the_service_run_is_in_the_package(package: zipfile.ZipFile) -> None:
    names = set(package.namelist())
    modules = set(INSTALL.python_modules()) - STANDARD_MODULES
    assert "recorder_vm.deploy.instance_endpoints" in modules
    service = recorder_command("python.exe", {})
    modules.add(service[service.index("-m") + 1])
    assert modules, "the extraction found the -m modules"
    assert [m for m in sorted(modules) if not _module_file(m, names)] == []
    assert not _module_file("recorder_vm.deploy.not_there", names)


def test_the_bootstrap_runs_the_packaged_installer_with_the_parameters_it_declares(package: zipfile.ZipFile) -> None:
    recorder = Bicep.load(REPO / "infra" / "modules" / "recorder.bicep")
    install_script = value(recorder.variables()["bootstrapConfig"])["installScript"]  # type: ignore[index]
    assert _zip_path(install_script) in set(package.namelist())
    bootstrap = (REPO / "infra" / "scripts" / "recorder-bootstrap.ps1").read_text()
    call = re.search(r"& \$installer (.+)", bootstrap)
    assert call is not None
    declared = set(re.findall(r"\[string\] \$(\w+)", (DEPLOY / "install.ps1").read_text()))
    assert set(re.findall(r"-(\w+) \$", call.group(1))) <= declared


def test_the_uploaded_blob_is_named_for_the_version_preprovision_puts_in_the_model() -> None:
    blob, _ = deployed_package()
    assert blob == f"{hooks.build_package(REPO).version}/{hooks.PACKAGE_BLOB}"
