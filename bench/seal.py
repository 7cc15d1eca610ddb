"""The seal row alone: seal + verify of about a million events against a raw psycopg read of
the same rows (the same measurement as ``make bench``'s scale part, without the rest).

    DATABASE_URL=postgres://…/an_empty_database python -m bench.seal [--events N] [--runs N]

It migrates the database, seeds it through the product's services, grows the audit table with
``INSERT … SELECT`` (so the INSERT trigger stores each event's digest, as in production) and
prints each run's figures and the median ratio. The database must be empty and throwaway.
"""

import argparse
import json
import os
import secrets


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    if not os.environ.get("DATABASE_URL"):
        parser.error("set DATABASE_URL to an empty, throwaway PostgreSQL database")
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/1")
    os.environ.setdefault("BENCH_CACHE_PREFIX", f"keyward-bench-seal-{os.getpid()}")
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"

    import django

    django.setup()
    from django.core.management import call_command

    from bench import scale, seeding

    call_command("migrate", interactive=False, verbosity=0)
    seed = seeding.seed(filler_keys=100, log=print)
    seeding.prepare_event_series()
    seeding.grow_events(seed, args.events, log=print)
    out = scale.seal_verify(args.runs, log=print)
    print(json.dumps({k: out[k] for k in ("events", "median_s", "ratios", "ratio")}, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
