"""A byte budget filled in order of value: each piece is taken whole, or not at all.

The markdown renderer sizes every piece (the headline, one line per failure, each trace, each
suite row, ...) and offers them here from the most to the least valuable, so a 60 KiB cap holds as
much as fits instead of being halved until it does. Nothing is ever cut inside a piece.
"""

from __future__ import annotations

from collections.abc import Iterable


class Budget:
    def __init__(self, max_bytes: int) -> None:
        self.left = max_bytes

    def take(self, size: int) -> bool:
        """Spend `size` bytes when they fit."""
        if size > self.left:
            return False
        self.left -= size
        return True

    def take_while(self, sizes: Iterable[int]) -> int:
        """How many of `sizes`, in order, fit; they are spent. Stops at the first that does not."""
        taken = 0
        for size in sizes:
            if not self.take(size):
                break
            taken += 1
        return taken


def utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "replace"))
