#!/usr/bin/env bash
# Regenerates the shipped man page and shell completions from the command definitions
# (swift-argument-parser generates both). Run after changing a command or flag; the test
# `theShippedManPageAndCompletionsMatchTheCommands` fails until you do.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product chatstore >/dev/null
bin=.build/debug/chatstore
mkdir -p share/man/man1 share/completions
for shell in bash zsh fish; do
  "$bin" --generate-completion-script "$shell" > "share/completions/chatstore.$shell"
done
swift package --allow-writing-to-package-directory generate-manual --configuration debug \
  --date 2026-12-01 --authors "chatstore developers" -o share/man/man1 >/dev/null
rm -f share/man/chatstore.1
echo "wrote share/man/man1/chatstore.1 and share/completions/chatstore.{bash,zsh,fish}"
