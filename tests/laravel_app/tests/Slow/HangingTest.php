<?php

namespace Tests\Slow;

use PHPUnit\Framework\TestCase;

/**
 * Never finishes in time: the runner's deadline test selects it with `--testsuite Slow`
 * (phpunit.xml leaves the suite out of its default) and expects the run to be stopped.
 *
 * @group slow
 */
class HangingTest extends TestCase
{
    public function test_prints_then_hangs(): void
    {
        fwrite(STDOUT, "hanging test started\n");
        sleep(600);
        $this->assertTrue(true);
    }
}
