"""Messages of the error tree that are built from other errors."""

from __future__ import annotations

from powerp_async import Block, FetchFailedError, ServerError


def test_a_failed_fetch_names_its_first_block_once() -> None:
    block = Block(1, "last", ("7",), 0, 60_000_000, 1_000_000)
    named = ServerError(
        f"the server answered 502 for {block.describe()}",
        method="POST",
        url="http://127.0.0.1:8765/rt-api/api/v1/Query",
        status=502,
    )
    unnamed = TimeoutError("no answer within 60 s")

    assert str(FetchFailedError([(block, named), (block, unnamed)])) == (
        "2 block(s) failed after retries; first: the server answered 502 for "
        f"{block.describe()}"
    )
    assert str(FetchFailedError([(block, unnamed)])) == (
        f"1 block(s) failed after retries; first: {block.describe()}: "
        "no answer within 60 s"
    )
