<?php

namespace Tests\Hostile;

use PHPUnit\Framework\TestCase;

/**
 * Starts processes that leave the runner's process group (setsid) or its tree (a double
 * fork), each carrying a marker naming this run in its command line, then passes, fails or
 * hangs. A runner that only kills its child's process group leaves them running into the next
 * invocation, where they could rewrite that run's files before upload.
 *
 * @group hostile
 */
class DetachTest extends TestCase
{
    private function detach(): void
    {
        $marker = escapeshellarg('ltr-hostile-detached:' . Hostile::runDir());
        $php = escapeshellarg(PHP_BINARY);
        exec("setsid $php -r 'sleep(600);' -- $marker-setsid > /dev/null 2>&1 &");
        $inner = "($php -r 'sleep(600);' -- $marker-doublefork > /dev/null 2>&1 &) &";
        exec('sh -c ' . escapeshellarg($inner) . ' > /dev/null 2>&1');
        Hostile::report('detached ' . $marker);
        usleep(300000); // let both start before the run can end
    }

    public function test_detaches_then_passes(): void
    {
        $this->detach();
        $this->assertTrue(true);
    }

    public function test_detaches_then_fails(): void
    {
        $this->detach();
        $this->fail('failing after detaching');
    }

    public function test_detaches_then_hangs(): void
    {
        $this->detach();
        fwrite(STDOUT, "hostile test hanging\n");
        sleep(600);
    }
}
