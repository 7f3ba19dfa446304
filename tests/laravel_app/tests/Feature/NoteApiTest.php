<?php

namespace Tests\Feature;

use App\Models\Note;
use Illuminate\Foundation\Testing\RefreshDatabase;
use Illuminate\Support\Facades\DB;
use Tests\TestCase;

/**
 * Runs against the PostgreSQL named by DB_HOST, DB_PORT, DB_DATABASE, DB_USERNAME and
 * DB_PASSWORD (the runner sets them from the Secrets Manager secret).
 *
 * @group database
 */
class NoteApiTest extends TestCase
{
    use RefreshDatabase;

    public function test_the_database_is_postgresql(): void
    {
        $version = DB::selectOne('select version() as v')->v;
        $this->assertStringStartsWith('PostgreSQL', $version);
    }

    public function test_a_note_is_stored_and_read_back(): void
    {
        $created = $this->postJson('/api/notes', ['title' => 'Nightly', 'body' => 'ran at 02:00'])
            ->assertCreated()
            ->json();

        $this->assertDatabaseHas('notes', ['title' => 'Nightly']);
        $this->getJson('/api/notes/'.$created['id'])->assertOk()->assertJson(['body' => 'ran at 02:00']);
    }

    public function test_a_note_needs_a_title(): void
    {
        $this->postJson('/api/notes', ['body' => 'no title'])->assertStatus(422);
        $this->assertSame(0, Note::count());
    }
}
