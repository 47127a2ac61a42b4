"""`manage.py eas VERB [options]`: the cmdlet-style CLI (DESIGN.md, "The `eas` CLI").

This module only builds the parser and reports errors; the verbs live in
devices.cli. Errors are one line, `eas: error: <message>`, and a non-zero exit.
"""

import os
import sys
from argparse import Namespace

from django.core.management.base import BaseCommand, CommandError, CommandParser

from devices import cli
from devices.actions import ActionError
from devices.cli import (
    api_tokens,
    audit,
    devices,
    directory,
    imports,
    lifecycle,
    mail,
    mailboxes,
    org,
    policies,
    rules,
    simulate,
)

VERB_MODULES = (
    org,
    mailboxes,
    devices,
    rules,
    policies,
    audit,
    lifecycle,
    imports,
    api_tokens,
    simulate,
    mail,
    directory,
)


class VerbParser(CommandParser):
    """A verb's parser: a bad argument is a CommandError naming the verb, not a usage dump."""

    def error(self, message):
        verb = self.prog.rsplit(" ", 1)[-1]
        raise cli.CliError(f"{verb}: {message}", returncode=2)


class Command(BaseCommand):
    help = "Manage ActiveSync device access: org settings, mailboxes, devices, rules, audit."
    requires_system_checks = []  # scripts read stdout/stderr; check warnings would litter it

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)

        def error(message):
            # Unknown options after a verb land here, at the top parser: one line too.
            raise cli.CliError(f"{message} (see manage.py eas --help)", returncode=2)

        parser.error = error
        return parser

    def add_arguments(self, parser):
        verbs = parser.add_subparsers(
            dest="verb", metavar="VERB", required=True, parser_class=VerbParser
        )
        for module in VERB_MODULES:
            module.register(verbs)
        for verb in verbs.choices.values():
            if "--actor" in verb._option_string_actions:  # get-audit-log: a filter there
                continue
            verb.add_argument(
                "--actor",
                dest="credit_as",
                metavar="NAME",
                help="who the audit trail credits with this command's changes"
                " (default: the OS user running it)",
            )

    def handle(self, *args, handler, **options):
        try:
            cli.set_operator(options.pop("credit_as", None))
            handler(self.stdout, Namespace(**options))
        except ActionError as e:
            raise CommandError(str(e)) from None
        except BrokenPipeError:  # `eas get-device | head`: the reader has had enough
            if not self._called_from_command_line:
                raise
        else:
            return
        # Outside the except block, so that the half-read query is closed first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)

    def run_from_argv(self, argv):
        self._called_from_command_line = True
        try:
            super().run_from_argv(argv)
        except CommandError as e:  # raised by a verb's parser, before execute()
            self._fail(e)

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except CommandError as e:
            if self._called_from_command_line and not options.get("traceback"):
                self._fail(e)
            raise

    def _fail(self, error: CommandError):
        self.stderr.write(f"eas: error: {' '.join(str(error).split())}")
        sys.exit(error.returncode)
