"""What installs and runs the recorder on a Windows VM of the scale set: install.ps1, drain.ps1, the service."""
