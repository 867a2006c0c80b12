"""ReadyQueue: the most urgent ready node first, passing over nodes whose key is full."""

from __future__ import annotations

from dbt_graph import ConcurrencyKey, ReadyQueue

HEAVY = ConcurrencyKey(selector="tag:heavy", limit=1)
SNAPSHOTS = ConcurrencyKey(selector="resource_type:snapshot", limit=2)


def drain(queue: ReadyQueue) -> list[str]:
    out = []
    while (uid := queue.pop()) is not None:
        out.append(uid)
    return out


def test_without_keys_nodes_come_out_by_urgency_whatever_the_push_order() -> None:
    queue = ReadyQueue({"a": 2, "b": 0, "c": 1}.__getitem__)
    for uid in "abc":
        queue.push(uid)
    assert len(queue) == 3
    assert drain(queue) == ["b", "c", "a"]
    assert len(queue) == 0


def test_a_full_key_is_passed_over_and_its_nodes_wait_in_urgency_order() -> None:
    rank = {"h1": 0, "h2": 1, "h3": 2, "x": 3}
    queue = ReadyQueue(rank.__getitem__, held={u: (HEAVY,) for u in ("h1", "h2", "h3")})
    for uid in rank:
        queue.push(uid)
    assert drain(queue) == ["h1", "x"]
    assert len(queue) == 2  # h2 and h3 are parked, still waiting
    queue.release("h1")
    assert drain(queue) == ["h2"]
    queue.release("h2")
    assert drain(queue) == ["h3"]


def test_a_parked_node_outranks_a_less_urgent_ready_one_once_its_key_frees() -> None:
    rank = {"h1": 0, "h2": 1, "late": 2}
    queue = ReadyQueue(rank.__getitem__, held={"h1": (HEAVY,), "h2": (HEAVY,)})
    queue.push("h1")
    queue.push("h2")
    assert drain(queue) == ["h1"]
    queue.push("late")
    queue.release("h1")
    assert queue.pop() == "h2"
    assert queue.pop() == "late"


def test_a_key_with_room_for_two_lets_two_of_its_nodes_run() -> None:
    rank = {f"s{i}": i for i in range(4)}
    queue = ReadyQueue(rank.__getitem__, held={u: (SNAPSHOTS,) for u in rank})
    for uid in rank:
        queue.push(uid)
    assert drain(queue) == ["s0", "s1"]
    queue.release("s1")
    queue.release("s0")
    assert drain(queue) == ["s2", "s3"]


def test_a_node_holding_two_keys_needs_room_in_both() -> None:
    rank = {"heavy_snap": 0, "heavy": 1, "snap": 2}
    queue = ReadyQueue(
        rank.__getitem__,
        held={"heavy_snap": (HEAVY, SNAPSHOTS), "heavy": (HEAVY,), "snap": (SNAPSHOTS,)},
    )
    for uid in rank:
        queue.push(uid)
    # heavy_snap takes both keys; heavy must wait for the heavy slot, snap still fits.
    assert drain(queue) == ["heavy_snap", "snap"]
    queue.release("heavy_snap")
    assert drain(queue) == ["heavy"]
