"""Request bodies are capped before they are read: a declared Content-Length over the cap is answered 413 without
reading a byte, and a body that runs past the cap while streaming (no Content-Length, or a lying one) is cut off
there. Uploads (multipart) get ``api.max_upload_bytes``, every other body ``api.max_body_bytes``."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from likeness.api.problems import problem
from likeness.settings import ApiSettings


class _Overflow(Exception):
    pass


class BodyLimit:
    def __init__(self, app: ASGIApp, settings: ApiSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        cap = self._cap(headers.get("content-type", ""))
        declared = headers.get("content-length", "")
        if declared.strip().isdigit() and int(declared) > cap:
            await self._refuse(scope, send, cap)
            return
        await self._streamed(scope, receive, send, cap)

    def _cap(self, content_type: str) -> int:
        multipart = content_type.lower().startswith("multipart/")
        return self.settings.max_upload_bytes if multipart else self.settings.max_body_bytes

    async def _streamed(self, scope: Scope, receive: Receive, send: Send, cap: int) -> None:
        seen = 0
        over = False

        async def counted() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    over = True
                    raise _Overflow
            return message

        async def guarded(message: Message) -> None:
            if not over:  # what the app answers after the cut (its body parser failing) is replaced by the 413
                await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not over:
                raise
        if over:
            await self._refuse(scope, send, cap)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, cap: int) -> None:
        response = problem(413, "too_large", f"the request body is over the {cap} byte limit")
        response.headers["Connection"] = "close"  # the unread rest of the body is not worth reading
        await response(scope, _nothing, send)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}
