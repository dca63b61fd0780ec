"""Results: a table of median/min/max per figure, a JSON file, and the target count."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


@dataclass
class Figure:
    scenario: str
    name: str
    unit: str
    samples: list[float]
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "median": self.median,
            "min": min(self.samples),
            "max": max(self.samples),
        }


@dataclass
class Target:
    scenario: str
    text: str
    measured: float  # the ratio or figure compared
    limit: float
    higher_is_better: bool = True
    unit: str = ""

    @property
    def met(self) -> bool:
        return self.measured >= self.limit if self.higher_is_better else self.measured <= self.limit


@dataclass
class Report:
    machine: dict[str, Any]
    mode: str
    figures: list[Figure] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(
        self, scenario: str, name: str, unit: str, samples: list[float], note: str = ""
    ) -> Figure:
        figure = Figure(scenario, name, unit, samples, note)
        self.figures.append(figure)
        return figure

    def target(
        self,
        scenario: str,
        text: str,
        measured: float,
        limit: float,
        *,
        higher: bool = True,
        unit: str = "",
    ) -> None:
        self.targets.append(Target(scenario, text, measured, limit, higher, unit))

    def print(self, console: Console) -> None:
        console.print(
            "[bold]Machine[/bold]: " + ", ".join(f"{k} {v}" for k, v in self.machine.items())
        )
        table = Table("scenario", "figure", "median", "min", "max", "unit", "runs", "note")
        for f in self.figures:
            table.add_row(
                f.scenario,
                f.name,
                _fmt(f.median),
                _fmt(min(f.samples)),
                _fmt(max(f.samples)),
                f.unit,
                str(len(f.samples)),
                f.note,
            )
        console.print(table)
        targets = Table("scenario", "target", "measured", "needed", "met")
        for t in self.targets:
            sign = ">=" if t.higher_is_better else "<="
            targets.add_row(
                t.scenario,
                t.text,
                f"{_fmt(t.measured)}{t.unit}",
                f"{sign} {_fmt(t.limit)}{t.unit}",
                "yes" if t.met else "NO",
            )
        console.print(targets)
        for note in self.notes:
            console.print(f"note: {note}")
        met = sum(t.met for t in self.targets)
        console.print(f"targets met: {met} of {len(self.targets)}")

    def save(self, path: Path) -> None:
        payload = {
            "mode": self.mode,
            "machine": self.machine,
            "figures": [f.as_dict() for f in self.figures],
            "targets": [{**asdict(t), "met": t.met} for t in self.targets],
            "notes": self.notes,
            "targets_met": sum(t.met for t in self.targets),
            "targets_total": len(self.targets),
        }
        path.write_text(json.dumps(payload, indent=2) + "\n")


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.4f}"
