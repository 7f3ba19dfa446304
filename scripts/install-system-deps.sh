#!/usr/bin/env bash
# Installs the Debian packages the test suite and the demo need, only those that are missing:
# PHP 8 with the extensions a Laravel app uses, PHPUnit 9, Laravel 8 and Mockery (the fixture app
# is built from these, never from Packagist), PostgreSQL server binaries, and Node.js for jsii.
# terraform cannot come from the package registries: the tests that need it say so when it is absent.
set -euo pipefail

missing=()
have_php_ext() { php -r "exit(extension_loaded('$1') ? 0 : 1);" 2>/dev/null; }

command -v php >/dev/null || missing+=(php-cli)
for ext in pdo_pgsql:php-pgsql dom:php-xml mbstring:php-mbstring intl:php-intl; do
  have_php_ext "${ext%%:*}" || missing+=("${ext##*:}")
done
[ -x /usr/bin/phpunit ] || missing+=(phpunit)
[ -f /usr/share/php/Illuminate/autoload.php ] || missing+=(php-laravel-framework)
[ -d /usr/share/php/Mockery ] || missing+=(php-mockery)
if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
command -v psql >/dev/null || missing+=(postgresql-client)
command -v node >/dev/null || missing+=(nodejs)

if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi

echo "system packages: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "error: need root to install ${missing[*]}; run: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# policy-rc.d keeps the postgresql package from starting a system cluster we never use.
if [ -z "$SUDO" ] && [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
