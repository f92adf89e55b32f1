"""The web pages: server-rendered Jinja2 on the API's own FastAPI app (``create_site``), no front-end build step.

Reviewers work the match queue (``/review``) and watch the pipeline (``/overview``); a consenting person enrolls,
sees only their own matches, asks for takedowns and withdraws (``/me``); anyone protects an image by its hash,
computed in their browser by our own PDQ module (``/protect``: the picture never leaves the page). Pages are a
shell like the CLI and the API: they parse, call the same service functions, and render."""

from likeness.web.site import create_site

__all__ = ["create_site"]
