<?php

namespace App\Console\Commands;

use Illuminate\Console\Command;
use Symfony\Component\Process\Process;

/**
 * `php artisan test`: Laravel 8 ships none without nunomaduro/collision, so the app
 * brings its own. It runs PHPUnit in a child process with the app's phpunit.xml and
 * passes every argument through (--filter, --group, --log-junit ...).
 */
class RunTests extends Command
{
    protected $signature = 'test';

    protected $description = 'Run the application tests with PHPUnit';

    public function __construct()
    {
        parent::__construct();
        // PHPUnit validates its own options.
        $this->ignoreValidationErrors();
    }

    public function handle(): int
    {
        $argv = $_SERVER['argv'];
        $phpunitArgs = array_slice($argv, array_search('test', $argv, true) + 1);

        $command = array_merge(
            [PHP_BINARY, $this->phpunitBinary(), '--configuration', base_path('phpunit.xml')],
            $phpunitArgs
        );

        $process = new Process($command, base_path(), null, null, null);
        $process->run(function (string $type, string $chunk): void {
            $this->output->write($chunk, false, \Symfony\Component\Console\Output\OutputInterface::OUTPUT_RAW);
        });

        return $process->getExitCode() ?? 1;
    }

    private function phpunitBinary(): string
    {
        foreach ([base_path('vendor/bin/phpunit'), '/usr/bin/phpunit'] as $candidate) {
            if (is_file($candidate)) {
                return $candidate;
            }
        }
        throw new \RuntimeException('PHPUnit not found: install it with composer (require-dev) or apt (phpunit).');
    }
}
