<?php

namespace Tests\Feature;

use Tests\TestCase;

class HealthTest extends TestCase
{
    public function test_health_endpoint_answers_without_a_database(): void
    {
        $this->getJson('/api/health')->assertOk()->assertJson(['status' => 'ok']);
    }

    public function test_storage_is_writable(): void
    {
        $file = storage_path('framework/cache/data/probe.txt');
        @mkdir(dirname($file), 0777, true);
        $this->assertNotFalse(file_put_contents($file, 'probe'));
        $this->assertSame('probe', file_get_contents($file));
    }
}
