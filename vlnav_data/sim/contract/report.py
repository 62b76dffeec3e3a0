"""What a simulator contract check reports: violations by rule (:func:`vlnav_data.sim.contract.check_arena`)."""

from __future__ import annotations

from dataclasses import dataclass

from vlnav_data.errors import ConfigError

#: Rule ids, in the order they are checked and reported.
RULES: tuple[str, ...] = (
    "attributes",
    "spaces",
    "observation",
    "info",
    "privileged_state",
    "instruction",
    "target",
    "starts",
    "step",
    "actions",
    "env_steps",
    "termination",
    "autoreset",
    "determinism",
    "set_state",
)


@dataclass(frozen=True)
class ContractViolation:
    """One broken rule: ``rule`` (an id of :data:`RULES`) and what was expected and found."""

    rule: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.message}"


@dataclass(frozen=True)
class ArenaReport:
    """Outcome of :func:`check_arena`.

    Attributes:
        violations: every violation found (at most ``max_per_rule`` per rule, then a count).
        notes: what could not be exercised and why (not violations).
        env: a short description of the checked env.
    """

    violations: tuple[ContractViolation, ...]
    notes: tuple[str, ...]
    env: str

    @property
    def ok(self) -> bool:
        """True when the env meets every rule."""
        return not self.violations

    def messages(self) -> list[str]:
        """``"[rule] message"`` of every violation."""
        return [str(v) for v in self.violations]

    def raise_if_violated(self, what: str = "the environment") -> None:
        """Raise :class:`ConfigError` naming every violation (one line) unless the env conforms."""
        if self.violations:
            listed = "; ".join(self.messages())
            raise ConfigError(
                f"{what} does not meet the simulator contract ({len(self.violations)} violations): {listed}. "
                "See vlnav_data.sim.contract and docs/simulator-backends.md"
            )


class Collector:
    def __init__(self, max_per_rule: int) -> None:
        self.items: list[ContractViolation] = []
        self.counts: dict[str, int] = {}
        self.notes: list[str] = []
        self.max_per_rule = max_per_rule

    def add(self, rule: str, message: str) -> None:
        n = self.counts.get(rule, 0) + 1
        self.counts[rule] = n
        if n <= self.max_per_rule:
            self.items.append(ContractViolation(rule, message))

    def has(self, rule: str) -> bool:
        return rule in self.counts

    def finish(self) -> list[ContractViolation]:
        out = sorted(self.items, key=lambda v: RULES.index(v.rule) if v.rule in RULES else len(RULES))
        for rule, n in self.counts.items():
            if n > self.max_per_rule:
                out.append(ContractViolation(rule, f"{n - self.max_per_rule} more violations of this rule"))
        return out


class Abort(Exception):
    """The env cannot be exercised further (e.g. reset() itself fails)."""
