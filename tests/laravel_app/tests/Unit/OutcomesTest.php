<?php

namespace Tests\Unit;

use PHPUnit\Framework\TestCase;

/**
 * One test of each outcome other than passing, so the runner and the report processor
 * see real failures, errors and skips. Deselect with `--exclude-group outcomes`.
 *
 * `make demo` varies two of them between runs with LTR_DEMO_SWITCHES (passed to PHPUnit through
 * the runner's RUNNER_CHILD_ENV); unset, every outcome is the one named.
 *
 * @group outcomes
 */
class OutcomesTest extends TestCase
{
    public function test_a_failing_assertion(): void
    {
        // The demo's second night: the release fixed it.
        $actual = self::demoSwitch('fix') ? 'expected' : 'actual';
        $this->assertSame('expected', $actual, 'the fixture fails on purpose');
    }

    public function test_an_error(): void
    {
        throw new \RuntimeException('the fixture errors on purpose');
    }

    public function test_a_skip(): void
    {
        $this->markTestSkipped('the fixture skips on purpose');
    }

    public function test_a_pass_among_them(): void
    {
        // The demo's on-demand run: a flake (same app version, another outcome).
        $this->assertFalse(self::demoSwitch('flake'), 'a flake: the demo fails it on purpose');
    }

    private static function demoSwitch(string $name): bool
    {
        return in_array($name, explode(',', (string) getenv('LTR_DEMO_SWITCHES')), true);
    }
}
