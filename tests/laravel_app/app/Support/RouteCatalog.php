<?php

namespace App\Support;

use Illuminate\Routing\Route;
use Illuminate\Routing\Router;
use ReflectionMethod;

/**
 * The app's API endpoints as the documentation commands see them: read from the
 * router and the controllers' doc comments, the way Scribe extracts them.
 */
class RouteCatalog
{
    public function __construct(private Router $router)
    {
    }

    /** @return list<array{methods: list<string>, uri: string, name: ?string, summary: string}> */
    public function endpoints(): array
    {
        $endpoints = [];
        foreach ($this->router->getRoutes()->getRoutes() as $route) {
            if (! str_starts_with($route->uri(), 'api/')) {
                continue;
            }
            $endpoints[] = [
                'methods' => array_values(array_diff($route->methods(), ['HEAD'])),
                'uri' => '/'.$route->uri(),
                'name' => $route->getName(),
                'summary' => $this->summary($route),
            ];
        }
        usort($endpoints, fn ($a, $b) => [$a['uri'], $a['methods']] <=> [$b['uri'], $b['methods']]);

        return $endpoints;
    }

    private function summary(Route $route): string
    {
        $action = $route->getActionName();
        if (! str_contains($action, '@')) {
            $action .= '@__invoke';
        }
        [$class, $method] = explode('@', $action, 2);
        if (! method_exists($class, $method)) {
            return '';
        }
        $comment = (new ReflectionMethod($class, $method))->getDocComment() ?: '';

        return trim(preg_replace(['#^\s*/\*\*#', '#\*/\s*$#', '#^\s*\* ?#m'], '', $comment));
    }
}
