"""The AWS CLI (`aws glacier ... --endpoint-url`) as tests drive it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from support.server import LiveServer


@dataclass
class GlacierCli:
    server: LiveServer
    env: dict[str, str]
    vault: str = "cli"

    def run(self, command: str, *args: str, account: str = "-") -> subprocess.CompletedProcess[str]:
        exe = shutil.which("aws", path=os.path.dirname(sys.executable)) or "aws"
        scope = ["--account-id", account]
        if command != "list-vaults":
            scope += ["--vault-name", self.vault]
        return subprocess.run(
            [
                exe,
                "glacier",
                *command.split(),
                *scope,
                *args,
                "--endpoint-url",
                self.server.endpoint,
                "--output",
                "json",
            ],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def __call__(self, command: str, *args: str, account: str = "-") -> Any:
        proc = self.run(command, *args, account=account)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout) if proc.stdout.strip() else {}

    def fails(self, command: str, *args: str) -> str:
        """Run a command that must fail; its stderr."""
        proc = self.run(command, *args)
        assert proc.returncode != 0, proc.stdout
        return proc.stderr
