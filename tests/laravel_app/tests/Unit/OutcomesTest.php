<?php

namespace Tests\Unit;

use PHPUnit\Framework\TestCase;

/**
 * One test of each outcome other than passing, so the runner and the report processor
 * see real failures, errors and skips. Deselect with `--exclude-group outcomes`.
 *
 * @group outcomes
 */
class OutcomesTest extends TestCase
{
    public function test_a_failing_assertion(): void
    {
        $this->assertSame('expected', 'actual', 'the fixture fails on purpose');
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
        $this->assertTrue(true);
    }
}
