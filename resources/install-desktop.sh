#!/bin/sh
# Add the packaged Hearth to the Linux desktop menu (for the current user).
#   resources/install-desktop.sh [path/to/Hearth]
# Without an argument it looks for the app this script came with (the script
# travels inside dist/Hearth/_internal/resources/) or for dist/Hearth/Hearth.
# Move the app folder where it will stay first; run the script again after moving it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
app=${1:-}
if [ -z "$app" ]; then
  for candidate in "$here/../../Hearth" "$here/../dist/Hearth/Hearth"; do
    if [ -x "$candidate" ]; then app=$candidate; break; fi
  done
fi
if [ -z "$app" ] || [ ! -x "$app" ]; then
  echo "install-desktop: cannot find the Hearth program; pass its path, e.g. dist/Hearth/Hearth" >&2
  exit 1
fi
app=$(cd "$(dirname "$app")" && pwd)/$(basename "$app")
data=${XDG_DATA_HOME:-$HOME/.local/share}
mkdir -p "$data/applications" "$data/icons/hicolor/256x256/apps" "$data/icons/hicolor/512x512/apps"
cp "$here/hearth.png" "$data/icons/hicolor/256x256/apps/hearth.png"
cp "$here/hearth-512.png" "$data/icons/hicolor/512x512/apps/hearth.png"
sed -e "s|^Exec=.*|Exec=\"$app\"|" -e "s|^Icon=.*|Icon=hearth|" -e "/^# /d" \
  "$here/hearth.desktop" > "$data/applications/hearth.desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$data/applications" || true
command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$data/icons/hicolor" || true
echo "Added Hearth to the desktop menu: $data/applications/hearth.desktop -> $app"
