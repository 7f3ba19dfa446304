<?php

namespace App\Http\Controllers;

use Illuminate\Routing\Controller;

class HealthController extends Controller
{
    /** Report that the app is up, without touching the database. */
    public function __invoke()
    {
        return ['status' => 'ok', 'app' => config('app.name')];
    }
}
