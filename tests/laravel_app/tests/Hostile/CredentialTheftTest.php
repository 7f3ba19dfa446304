<?php

namespace Tests\Hostile;

use PHPUnit\Framework\TestCase;

/**
 * Tries to read the runner's AWS credentials: from its own environment, and from the
 * environment of every ancestor through /proc/<pid>/environ (pid 1 included: on Fargate the
 * container's first process holds the container-credentials URI). Whatever it reads it prints
 * and puts into its failure message, so it would reach output.log and junit.xml.
 *
 * @group hostile
 */
class CredentialTheftTest extends TestCase
{
    private const WANTED = '/^(AWS_|ECS_|AMAZON_|_X_AMZN|LAMBDA_|DB_SECRET_ARN)/';

    public function test_reads_the_runner_credentials(): void
    {
        $stolen = [];
        foreach (getenv() as $name => $value) {
            if (preg_match(self::WANTED, $name)) {
                Hostile::report("own-env $name=$value");
                $stolen[] = "$name=$value";
            }
        }
        foreach (array_unique(array_merge(Hostile::ancestors(), [1])) as $pid) {
            $environ = @file_get_contents("/proc/$pid/environ");
            if ($environ === false || $environ === '') {
                Hostile::report("environ pid=$pid denied");
                continue;
            }
            Hostile::report("environ pid=$pid read");
            foreach (explode("\0", $environ) as $pair) {
                if (preg_match(self::WANTED, $pair)) {
                    Hostile::report("stolen pid=$pid $pair");
                    $stolen[] = $pair;
                }
            }
        }
        $this->assertSame([], $stolen, 'stolen: ' . implode(' ', $stolen));
    }
}
