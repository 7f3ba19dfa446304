<?php

namespace Tests\Unit;

use Illuminate\Support\Str;
use PHPUnit\Framework\TestCase;

class SlugTest extends TestCase
{
    /** @dataProvider titles */
    public function test_slug_of_a_title(string $title, string $expected): void
    {
        $this->assertSame($expected, Str::slug($title));
    }

    public function titles(): array
    {
        return [
            'plain' => ['Nightly Test Run', 'nightly-test-run'],
            'accents' => ['Crème brûlée', 'creme-brulee'],
        ];
    }

    public function test_collection_sums(): void
    {
        // `make demo`'s second night (LTR_DEMO_SWITCHES=regression): the release broke it.
        $items = self::demoSwitch('regression') ? [1, 2, 3, 4] : [1, 2, 3];
        $this->assertSame(6, collect($items)->sum(), 'the sum of the basket');
    }

    private static function demoSwitch(string $name): bool
    {
        return in_array($name, explode(',', (string) getenv('LTR_DEMO_SWITCHES')), true);
    }
}
