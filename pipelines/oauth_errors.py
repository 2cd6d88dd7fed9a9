"""Every sentence `intercom-sync connect` fails with, worded once, each with its exit code.

Each is one line that says what to fix. None carries the token, the client secret or the
authorization code: callers pass names and Intercom's error code, never a credential.
"""

from __future__ import annotations

from intercom_elt.pipelines.errors import EXIT_AUTH, EXIT_NETWORK, EXIT_USAGE, UserError

CLIENT_ID_ENV = "INTERCOM_CLIENT_ID"
CLIENT_SECRET_ENV = "INTERCOM_CLIENT_SECRET"
CLIENT_ID_SECRET = "intercom_app.client_id"
CLIENT_SECRET_SECRET = "intercom_app.client_secret"


def missing_client(what: str) -> UserError:
    env, key = (CLIENT_ID_ENV, CLIENT_ID_SECRET) if what == "client_id" else (CLIENT_SECRET_ENV, CLIENT_SECRET_SECRET)
    return UserError(
        f"no OAuth {what} for the public app: set {env} or {key} in .dlt/secrets.toml "
        "(Developer Hub > your app > Basic information)",
        EXIT_USAGE,
    )


def env_token_needs_print(name: str, env_name: str) -> UserError:
    return UserError(
        f"workspace '{name}' takes its token from the environment variable {env_name}, which connect cannot "
        "write: rerun with --print-token and put the printed token in your secret manager, or use token_secret",
        EXIT_USAGE,
    )


def port_in_use(port: int) -> UserError:
    return UserError(
        f"cannot listen on 127.0.0.1:{port} for Intercom's callback (in use?): pass --port with a free port "
        "that matches a redirect URL of your app",
        EXIT_USAGE,
    )


def timed_out(seconds: float) -> UserError:
    return UserError(
        f"no answer from Intercom's authorize page within {seconds:g}s: open the printed URL, approve, and "
        "run connect again (or give more time with --timeout)",
        EXIT_AUTH,
    )


def denied(error: str) -> UserError:
    return UserError(
        f"the install was not approved on Intercom's page ({error}): run connect again and choose Authorize",
        EXIT_AUTH,
    )


def bad_state() -> UserError:
    return UserError(
        "the callback's state does not match this connect (a stale or foreign authorize link): run connect "
        "again and approve from the URL it prints",
        EXIT_AUTH,
    )


def no_code() -> UserError:
    return UserError(
        "Intercom's callback carried no authorization code: run connect again and approve from the URL it prints",
        EXIT_AUTH,
    )


def expired_code() -> UserError:
    return UserError(
        "the authorization code expired before it was exchanged (Intercom keeps it about 5 minutes): run "
        "connect again and approve promptly",
        EXIT_AUTH,
    )


def refused_code(status: int, code: str) -> UserError:
    return UserError(
        f"Intercom refused the authorization code ({status} {code}; unknown or already used): run connect again",
        EXIT_AUTH,
    )


def wrong_client(status: int, code: str) -> UserError:
    return UserError(
        f"Intercom rejected the app's credentials ({status} {code}): check {CLIENT_ID_ENV} and "
        f"{CLIENT_SECRET_ENV} (or {CLIENT_ID_SECRET} / {CLIENT_SECRET_SECRET}) against the Developer Hub",
        EXIT_AUTH,
    )


def no_token_in_answer() -> UserError:
    return UserError(
        "Intercom's token answer carried no token (neither token nor access_token): run connect again; if it "
        "persists, report it with --debug output",
        EXIT_AUTH,
    )


def me_refused(status: int) -> UserError:
    return UserError(
        f"the new token was refused by GET /me ({status}): run connect again; nothing was stored",
        EXIT_AUTH,
    )


def unreachable(what: str, url: str) -> UserError:
    return UserError(
        f"cannot reach Intercom's {what} at {url}: check the network, the workspace's region or base_url",
        EXIT_NETWORK,
    )


def secrets_unreadable(path: str, problem: str) -> UserError:
    return UserError(f"{path}: not valid TOML ({problem}): fix the file, then run connect again", EXIT_USAGE)


def secret_key_clash(path: str, key: str) -> UserError:
    return UserError(
        f"{path}: cannot store the token under {key}: a part of that key is already a value, not a table; "
        "choose another token_secret",
        EXIT_USAGE,
    )
