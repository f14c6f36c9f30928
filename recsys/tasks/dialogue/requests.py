"""What a Stylist conversation asks for, slot by slot: every user turn read into constraints
(:func:`recsys.understand.understand`), placed on the FASCODE slot of the garment it names, and merged in order
(:func:`recsys.understand.apply.merge_turns`: "actually, blue" replaces the colour asked before, everything else
said is kept).

A turn that names no garment ("make it black") is about the garment named last; in a conversation that has named
none, a colour or pattern is a preference on every slot ("I like navy and white"), and a negation ("nothing red")
applies to every slot. DESIGN section 14.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

from recsys.models.dialogue import CATALOG_TO_FASCODE, FASCODE_SLOTS
from recsys.tasks.dialogue.messages import user_turns
from recsys.understand import Constraint, Understanding, Vocabulary, understand
from recsys.understand.apply import merge_turns


@dataclass
class SlotRequest:
    """A conversation's request: constraints whose ``slot`` is a FASCODE slot (None: every slot), and the notes of
    its last message.

    Attributes
    ----------
    constraints : list of Constraint
    notes : list of str
    """

    constraints: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """True when the conversation asked for nothing the catalog's words name."""
        return not self.constraints

    def for_slot(self, slot: str) -> list[Constraint]:
        """The constraints on ``slot``'s item: its own, and those on every slot."""
        return [c for c in self.constraints if c.slot in (slot, None)]

    def _understanding(self) -> Understanding:
        return Understanding(constraints=list(self.constraints))

    def summary(self) -> str:
        """One line, e.g. ``"black · jacket → outer | white · sneakers → shoes"`` ("" when nothing)."""
        return self._understanding().summary()

    def parts(self) -> list[tuple[str, str]]:
        """``(key, label)`` of every constraint, for the page's removable chips."""
        return self._understanding().parts()


def _on_slot(c: Constraint, slot: str) -> Constraint:
    return replace(c, slot=slot, group=FASCODE_SLOTS.index(slot))


def conversation_request(turns: Sequence[dict], vocabulary: Vocabulary, ignore: Sequence[str] = ()) -> SlotRequest:
    """The :class:`SlotRequest` of the user turns of ``turns`` (see the module docstring), without the constraints
    whose key is in ``ignore``. Never raises."""
    per_turn: list[list[Constraint]] = []
    notes: list[str] = []
    last_slot: str | None = None
    for text in user_turns(turns):
        reading = understand(text, vocabulary)
        notes = list(reading.notes)
        named = any(c.group >= 0 for c in reading.constraints)
        mine: list[Constraint] = []
        for c in reading.constraints:
            if c.soft:
                mine.append(replace(c, slot=None, group=-1))
            elif c.group >= 0:
                slot = CATALOG_TO_FASCODE.get(c.slot or "")
                if slot is None:
                    if c.attribute == "category" and not c.negated:
                        notes.append(f"The stylist proposes an outer, a top, a bottom and shoes; {c.label} is none "
                                     "of them, so it is not part of the proposal.")
                    continue
                mine.append(_on_slot(c, slot))
                last_slot = slot
            elif not named and last_slot is not None:
                mine.append(_on_slot(c, last_slot))  # a follow-up about the garment named last
            else:
                mine.append(c if c.negated else replace(c, soft=True))
        per_turn.append(mine)
    ignored = set(ignore)
    merged = [c for c in merge_turns(per_turn) if c.key not in ignored]
    return SlotRequest(merged, notes)
