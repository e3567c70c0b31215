"""WebSocket mode's connection-scoped cache and the server-wide byte budget all connections' caches share."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from labkit.live.server.state import ResponseRecord
from labkit.model.cache import CacheModel, entry_bytes

if TYPE_CHECKING:
    from labkit.live.server.counters import ServerCounters


class CacheBudget:
    """A server-wide byte budget for every connection's cache: least recently used entries go first.

    Sizes are the modelled bytes of the cached conversation (tokens x ``bytes_per_token``): what a real
    server's connection cache would hold, by :func:`labkit.model.cache.entry_bytes` with
    :meth:`~labkit.model.cache.CacheModel.text_only`, the formula the DES sizes its entries with. An evicted
    connection's next continuation gets ``previous_response_not_found`` and its client falls back to the full
    context. Evictions are counted in the engine's ``cache_evictions`` metric.
    """

    def __init__(self, max_bytes: int | None, bytes_per_token: float, metrics: ServerCounters) -> None:
        if max_bytes is not None and (not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 0):
            raise ValueError(f"max_cached_bytes: must be an integer >= 0 or None, got {max_bytes!r}")
        self.max_bytes = max_bytes
        self.bytes_per_token = bytes_per_token
        self.model = CacheModel.text_only(bytes_per_token)
        self.metrics = metrics
        self.total = 0
        # (id(cache), lane) -> (cache, lane, bytes), oldest first.
        self._entries: OrderedDict[tuple[int, str | None], tuple[LaneCache, str | None, int]] = OrderedDict()

    def size(self, record: ResponseRecord) -> int:
        return entry_bytes(record.conversation_tokens, self.model)

    def add(self, cache: LaneCache, lane: str | None, record: ResponseRecord) -> None:
        self.discard(cache, lane)
        n = self.size(record)
        self._entries[(id(cache), lane)] = (cache, lane, n)
        self.total += n
        if self.max_bytes is None:
            return
        while self.total > self.max_bytes and self._entries:
            _, (victim, victim_lane, size) = self._entries.popitem(last=False)
            victim.lanes.pop(victim_lane, None)
            self.total -= size
            self.metrics.cache_evictions += 1

    def touch(self, cache: LaneCache, lane: str | None) -> None:
        key = (id(cache), lane)
        if key in self._entries:
            self._entries.move_to_end(key)

    def discard(self, cache: LaneCache, lane: str | None) -> None:
        entry = self._entries.pop((id(cache), lane), None)
        if entry is not None:
            self.total -= entry[2]


class LaneCache:
    """WebSocket mode's connection-scoped cache: the most recent completed response of each lane.

    With a :class:`CacheBudget`, every connection's cache shares one server-wide byte budget.
    """

    def __init__(self, budget: CacheBudget | None = None) -> None:
        self.lanes: dict[str | None, ResponseRecord] = {}
        self.budget = budget

    def put(self, lane: str | None, record: ResponseRecord) -> None:
        self.lanes[lane] = record
        if self.budget is not None:
            self.budget.add(self, lane, record)

    def find(self, response_id: str) -> tuple[str | None, ResponseRecord] | None:
        # A continuation may name the latest response of any lane of this socket (a fork).
        for lane, record in self.lanes.items():
            if record.id == response_id:
                if self.budget is not None:
                    self.budget.touch(self, lane)
                return lane, record
        return None

    def evict(self, lane: str | None, response_id: str) -> bool:
        record = self.lanes.get(lane)
        if record is not None and record.id == response_id:
            del self.lanes[lane]
            if self.budget is not None:
                self.budget.discard(self, lane)
            return True
        return False

    def clear(self) -> None:
        if self.budget is not None:
            for lane in self.lanes:
                self.budget.discard(self, lane)
        self.lanes.clear()

    def cached_tokens(self) -> int:
        return sum(r.conversation_tokens for r in self.lanes.values())
