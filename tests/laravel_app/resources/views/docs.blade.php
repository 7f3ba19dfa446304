<!DOCTYPE html>
<html lang="en">
<head>
    <meta charset="utf-8">
    <title>{{ $title }}</title>
</head>
<body>
<h1>{{ $title }}</h1>
@foreach ($endpoints as $endpoint)
    <section id="{{ $endpoint['name'] ?? $endpoint['uri'] }}">
        <h2><code>{{ implode('|', $endpoint['methods']) }} {{ $endpoint['uri'] }}</code></h2>
        <p>{{ $endpoint['summary'] }}</p>
    </section>
@endforeach
</body>
</html>
