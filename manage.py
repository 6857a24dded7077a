#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if sys.argv[1:2] == ["serve"]:
        # Daphne builds its event loop when Django loads its app, so the server's loop
        # (uvloop: a fraction of asyncio's cost per socket event) is chosen before that.
        import asyncio

        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
