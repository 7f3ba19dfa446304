<?php

namespace Tests\Feature;

use Tests\TestCase;

/**
 * Prints the database credentials and fails with them in its message, as a careless debug
 * line or a connection error would: the runner must mask them in the log, the JUnit report
 * and its response.
 *
 * @group leaky
 */
class ConnectionDumpTest extends TestCase
{
    public function test_prints_and_fails_with_the_connection_settings(): void
    {
        $c = config('database.connections.pgsql');
        fwrite(STDOUT, "debug: connecting as {$c['username']} with password {$c['password']}\n");
        $this->fail("could not use pgsql://{$c['username']}:{$c['password']}@{$c['host']}/{$c['database']}");
    }
}
