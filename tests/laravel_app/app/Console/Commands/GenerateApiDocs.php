<?php

namespace App\Console\Commands;

use App\Support\RouteCatalog;
use Illuminate\Console\Command;
use Illuminate\Support\Facades\File;

/**
 * Stand-in for knuckleswtf/scribe's `scribe:generate` (not packaged in Debian): same
 * name, same options, same output places (.scribe/ then public/docs/), generated
 * from the app's real routes.
 */
class GenerateApiDocs extends Command
{
    protected $signature = 'scribe:generate {--force : Discard changes to the extracted endpoints} {--no-extraction : Reuse .scribe/endpoints.json}';

    protected $description = 'Generate the API documentation from the routes';

    public function handle(RouteCatalog $catalog): int
    {
        $intermediate = base_path(config('docs.intermediate_output'));
        $endpointsFile = $intermediate.'/endpoints.json';

        if ($this->option('no-extraction')) {
            if (! is_file($endpointsFile)) {
                $this->error("No extracted endpoints at {$endpointsFile}: run without --no-extraction first.");

                return 1;
            }
            $endpoints = json_decode(File::get($endpointsFile), true, 512, JSON_THROW_ON_ERROR);
        } else {
            $endpoints = $catalog->endpoints();
            File::ensureDirectoryExists($intermediate);
            File::put($endpointsFile, json_encode($endpoints, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES)."\n");
            $this->info('Extracted '.count($endpoints).' endpoints into '.config('docs.intermediate_output').'/endpoints.json');
        }

        $html = view('docs', ['title' => config('docs.title'), 'endpoints' => $endpoints])->render();
        $output = base_path(config('docs.html_output'));
        File::ensureDirectoryExists($output);
        File::put($output.'/index.html', $html);
        File::put($output.'/collection.json', json_encode([
            'info' => ['name' => config('docs.title')],
            'item' => array_map(fn ($e) => ['name' => $e['summary'] ?: $e['uri'], 'request' => ['method' => $e['methods'][0], 'url' => $e['uri']]], $endpoints),
        ], JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES)."\n");

        $this->info('Wrote '.config('docs.html_output').'/index.html');

        return 0;
    }
}
