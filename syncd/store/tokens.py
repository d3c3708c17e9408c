"""The TokenStore adapters use: reads on the read side, saves through the writer (durable on return)."""

from __future__ import annotations

from syncd.channels.base import TokenRecord
from syncd.store import commands
from syncd.store.queries import Reader
from syncd.store.writer import Writer


class DbTokenStore:
    """Tokens in the `tokens` table."""

    def __init__(self, writer: Writer, reader: Reader) -> None:
        self.writer = writer
        self.reader = reader

    async def load(self, channel: str) -> TokenRecord | None:
        """The last committed record."""
        return await self.reader.token(channel)

    async def save(self, channel: str, record: TokenRecord) -> None:
        """Commit before returning, so a crash right after cannot lose a rotated refresh token."""
        await self.writer.submit(lambda tx: commands.save_token(
            tx, channel, record.refresh_token, record.access_token, record.expires_at))
