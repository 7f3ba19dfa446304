<?php

namespace App\Http\Controllers;

use App\Models\Note;
use Illuminate\Http\Request;
use Illuminate\Routing\Controller;

class NoteController extends Controller
{
    /** List every note, newest first. */
    public function index()
    {
        return Note::query()->orderByDesc('id')->get();
    }

    /** Create a note from a title and an optional body. */
    public function store(Request $request)
    {
        $data = $request->validate([
            'title' => ['required', 'string', 'max:120'],
            'body' => ['nullable', 'string'],
        ]);

        return response()->json(Note::create($data), 201);
    }

    /** Show one note. */
    public function show(Note $note)
    {
        return $note;
    }
}
