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
        $this->assertSame(6, collect([1, 2, 3])->sum());
    }
}
