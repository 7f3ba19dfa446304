<?php

// Where the documentation commands write, relative to the app (Scribe's defaults).
return [
    'title' => env('DOCS_TITLE', 'Fixture App API'),
    'html_output' => 'public/docs',
    'intermediate_output' => '.scribe',
    'markdown_output' => 'docs/api.md',
];
