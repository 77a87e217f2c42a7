# Sourced by .ci/run: the dashboard's browser tests drive Debian's chromium at /usr/bin/chromium.
# Installed with apt when missing; where apt is not available nothing is done (those tests then
# fail and say the browser could not be launched).
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        (apt-get update -qq && apt-get install -y -qq chromium) || echo "chromium not installed" >&2
    elif command -v sudo >/dev/null 2>&1; then
        (sudo apt-get update -qq && sudo apt-get install -y -qq chromium) \
            || echo "chromium not installed" >&2
    fi
fi
