<?php

namespace Tests\Hostile;

/**
 * What a hostile test needs to find its way around the run: its ancestors, the run directory
 * and the JUnit path. Every finding is printed as a `HOSTILE <what> ...` line, so the runner's
 * tests (tests/runner/test_hostile.py) can tell an attack that failed from one never tried.
 */
final class Hostile
{
    /** Process ids from this process's parent up to pid 1. */
    public static function ancestors(): array
    {
        $pids = [];
        $pid = getmypid();
        while ($pid > 1) {
            $stat = @file_get_contents("/proc/$pid/stat");
            if ($stat === false) {
                break;
            }
            // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
            $fields = explode(' ', substr($stat, strrpos($stat, ')') + 2));
            $pid = (int) $fields[1];
            $pids[] = $pid;
        }
        return $pids;
    }

    /** The nearest ancestor that is not PHP: the runner. */
    public static function runnerPid(): int
    {
        foreach (self::ancestors() as $pid) {
            $cmdline = (string) @file_get_contents("/proc/$pid/cmdline");
            if (strpos($cmdline, 'php') === false) {
                return $pid;
            }
        }
        return 1;
    }

    /** The runner's folder for this run: APP_BASE_PATH is its `app` mirror. */
    public static function runDir(): string
    {
        return dirname($_ENV['APP_BASE_PATH'] ?? getenv('APP_BASE_PATH'));
    }

    public static function junitPath(): ?string
    {
        $argv = $_SERVER['argv'] ?? [];
        foreach ($argv as $i => $arg) {
            if ($arg === '--log-junit') {
                return $argv[$i + 1] ?? null;
            }
            if (strncmp($arg, '--log-junit=', 12) === 0) {
                return substr($arg, 12);
            }
        }
        return null;
    }

    public static function report(string $line): void
    {
        fwrite(STDOUT, "HOSTILE $line\n");
        fflush(STDOUT);
    }
}
