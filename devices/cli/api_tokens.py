"""new-api-token USER [--name N]: a REST API token for a login, printed once."""

from django.contrib.auth import get_user_model

from devices import actions

from . import CLI, CliError, add_verb


def register(verbs) -> None:
    p = add_verb(
        verbs,
        "new-api-token",
        new_api_token,
        "Create a REST API token for a login and print it. It is shown only this once; "
        "revoke it on the user's /account/tokens/ page.",
    )
    p.add_argument("user", metavar="USER", help="the login's username")
    p.add_argument("--name", default="Command line", help="what the token is for")


def new_api_token(out, args) -> None:
    User = get_user_model()
    users = User.objects.filter(**{f"{User.USERNAME_FIELD}__iexact": args.user.strip()})
    user = users.filter(**{User.USERNAME_FIELD: args.user.strip()}).first() or users.first()
    if user is None:
        raise CliError(f"No login {args.user!r}.")
    if not user.is_active:
        raise CliError(f"The login {user.get_username()!r} is disabled.")
    try:
        result = actions.create_api_token(CLI, user, args.name)
    except actions.ActionError as e:
        raise CliError(str(e)) from None
    _, key = result.obj
    out.write(key)
