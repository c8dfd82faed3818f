"""Wire-faithful local emulators of the Salesforce and Appcues APIs."""

from .server import Sandbox, SandboxProcess

__all__ = ["Sandbox", "SandboxProcess"]
