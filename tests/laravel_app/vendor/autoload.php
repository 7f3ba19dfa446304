<?php

// This fixture is built from Debian packages only (php-laravel-framework, phpunit,
// php-mockery): composer never runs here, so this file stands where composer's
// autoloader would and wires the same namespaces as composer.json's "autoload".
require_once '/usr/share/php/Illuminate/autoload.php';
require_once '/usr/share/php/Mockery/autoload.php';

spl_autoload_register(static function (string $class): void {
    static $prefixes = [
        'App\\' => '/app/',
        'Database\\' => '/database/',
        'Tests\\' => '/tests/',
    ];
    foreach ($prefixes as $prefix => $dir) {
        if (strncmp($class, $prefix, strlen($prefix)) === 0) {
            $relative = str_replace('\\', '/', substr($class, strlen($prefix)));
            $file = dirname(__DIR__).$dir.$relative.'.php';
            if (is_file($file)) {
                require $file;
            }
            return;
        }
    }
});
