<?php

namespace Tests\Hostile;

use Illuminate\Support\Facades\DB;
use Tests\TestCase;

/**
 * Writes the database password in every form a reader could turn back into it: literal,
 * XML-escaped (named, decimal, hex of either case), JSON (PHP escapes '/' as '\/'),
 * URL-encoded (either case, '+' for space), base64 at each alignment inside a longer base64
 * string, and split across two writes; then fails with the same forms in its message, which
 * PHPUnit XML-escapes into junit.xml.
 *
 * @group hostile
 */
class SecretFormsTest extends TestCase
{
    private static function forms(string $p): array
    {
        $chars = preg_split('//u', $p, -1, PREG_SPLIT_NO_EMPTY);
        $numeric = fn (string $format) => implode('', array_map(fn ($c) => sprintf($format, mb_ord($c)), $chars));
        $forms = [
            'literal' => $p,
            'xml-named' => htmlspecialchars($p, ENT_QUOTES | ENT_XML1),
            'xml-decimal' => $numeric('&#%d;'),
            'xml-hex-lower' => $numeric('&#x%x;'),
            'xml-hex-upper' => $numeric('&#X%X;'),
            'json' => substr(json_encode($p), 1, -1),
            'json-unicode' => substr(json_encode($p, JSON_HEX_TAG | JSON_HEX_AMP | JSON_HEX_APOS | JSON_HEX_QUOT), 1, -1),
            'url' => urlencode($p),
            'url-raw' => rawurlencode($p),
            'url-lower' => preg_replace_callback('/%[0-9A-F]{2}/', fn ($m) => strtolower($m[0]), rawurlencode($p)),
        ];
        foreach ([0, 1, 2] as $shift) {
            $forms["base64-$shift"] = base64_encode(substr('xyz', 0, $shift) . $p . 'trailing bytes');
        }
        return $forms;
    }

    public function test_prints_the_password_in_every_form(): void
    {
        $p = config('database.connections.pgsql.password');
        foreach (self::forms($p) as $name => $form) {
            fwrite(STDOUT, "HOSTILE form $name: [$form]\n");
        }
        // Split across two writes, flushed apart: the runner sees two chunks.
        $half = intdiv(strlen($p), 2);
        fwrite(STDOUT, 'HOSTILE form split: [' . substr($p, 0, $half));
        fflush(STDOUT);
        usleep(200000);
        fwrite(STDOUT, substr($p, $half) . "]\n");
        $this->fail("leaking: " . json_encode(self::forms($p)) . ' ' . implode(' | ', self::forms($p)));
    }

    /**
     * Laravel connects through Connector::createPdoConnection($dsn, $username, $password, ...):
     * with zend.exception_ignore_args=Off, the trace of a failed connection shows its arguments.
     */
    public function test_a_failed_connection_trace(): void
    {
        config(['database.connections.pgsql.port' => 1, 'database.connections.pgsql.options' => [\PDO::ATTR_TIMEOUT => 2]]);
        DB::purge('pgsql');
        try {
            DB::connection('pgsql')->getPdo();
        } catch (\Throwable $error) {
            $trace = $error->getTraceAsString();
            fwrite(STDOUT, "HOSTILE trace: $trace\n");
            throw $error;
        }
        $this->fail('connected to port 1?');
    }
}
