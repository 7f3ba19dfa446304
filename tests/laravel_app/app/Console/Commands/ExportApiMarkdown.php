<?php

namespace App\Console\Commands;

use App\Support\RouteCatalog;
use Illuminate\Console\Command;
use Illuminate\Support\Facades\File;

/** Writes the API reference as one markdown file, from the app's routes. */
class ExportApiMarkdown extends Command
{
    protected $signature = 'api:export-markdown {--title= : Heading of the document}';

    protected $description = 'Export the API reference as markdown';

    public function handle(RouteCatalog $catalog): int
    {
        $title = $this->option('title') ?: config('docs.title');
        $lines = ["# {$title}", '', '| Method | URI | Name | Summary |', '| --- | --- | --- | --- |'];
        foreach ($catalog->endpoints() as $endpoint) {
            $lines[] = sprintf(
                '| %s | `%s` | %s | %s |',
                implode(', ', $endpoint['methods']),
                $endpoint['uri'],
                $endpoint['name'] ?? '',
                str_replace('|', '\|', $endpoint['summary'])
            );
        }

        $target = base_path(config('docs.markdown_output'));
        File::ensureDirectoryExists(dirname($target));
        File::put($target, implode("\n", $lines)."\n");
        $this->info('Wrote '.config('docs.markdown_output').' ('.(count($lines) - 4).' endpoints)');

        return 0;
    }
}
