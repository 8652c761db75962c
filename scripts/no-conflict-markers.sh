#!/bin/sh
# Fails when a merge left its conflict markers in a tracked text file (npm run lint runs it): Biome reads code,
# and a marker inside a comment or a Markdown file passes it.
if git ls-files -z | xargs -0 grep -nIE '^(<<<<<<<|>>>>>>>)( |$)|^=======$' 2>/dev/null; then
  echo "merge conflict markers above: resolve them" >&2
  exit 1
fi
exit 0
