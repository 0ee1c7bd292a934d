#!/usr/bin/env python3
"""Writes apps/<name>/icon.png: a 64x64 rounded coloured square with the app's initial."""
import struct, zlib, sys, os, hashlib

GLYPHS = {  # 5x7 bitmaps
    'A': ["01110","10001","10001","11111","10001","10001","10001"],
    'J': ["00111","00010","00010","00010","00010","10010","01100"],
    'M': ["10001","11011","10101","10101","10001","10001","10001"],
    'P': ["11110","10001","10001","11110","10000","10000","10000"],
    'Q': ["01110","10001","10001","10001","10101","10010","01101"],
    'R': ["11110","10001","10001","11110","10100","10010","10001"],
    'S': ["01111","10000","10000","01110","00001","00001","11110"],
}
COLOURS = {
    'actual-budget': (42, 107, 235), 'adguard-home': (104, 188, 113), 'affine': (30, 30, 30),
    'authentik': (253, 75, 45), 'jellyfin': (170, 92, 195), 'jellyseerr': (99, 102, 241),
    'miniflux': (51, 51, 51), 'postgres': (51, 103, 145), 'prowlarr': (226, 124, 40),
    'qbittorrent': (44, 99, 174), 'radarr': (255, 194, 48), 'redis': (220, 56, 45),
    'sonarr': (53, 197, 244),
}

def png(w, h, rows):
    raw = b''.join(b'\x00' + bytes(r) for r in rows)
    def chunk(t, d):
        return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 6, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b''))

def icon(name):
    size, radius, scale = 64, 12, 6
    bg = COLOURS.get(name) or tuple(hashlib.sha256(name.encode()).digest()[:3])
    fg = (255, 255, 255) if sum(bg) < 600 else (20, 20, 20)
    glyph = GLYPHS[name[0].upper()]
    gx, gy = (size - 5 * scale) // 2, (size - 7 * scale) // 2
    rows = []
    for y in range(size):
        row = []
        for x in range(size):
            # Rounded corners: transparent outside the corner circles.
            cx = min(max(x, radius), size - 1 - radius)
            cy = min(max(y, radius), size - 1 - radius)
            if (x - cx) ** 2 + (y - cy) ** 2 > radius ** 2:
                row += [0, 0, 0, 0]
                continue
            inside = gx <= x < gx + 5 * scale and gy <= y < gy + 7 * scale
            on = inside and glyph[(y - gy) // scale][(x - gx) // scale] == '1'
            row += list(fg if on else bg) + [255]
        rows.append(row)
    return png(size, size, rows)

if __name__ == '__main__':
    apps_dir = sys.argv[1]
    for name in sorted(os.listdir(apps_dir)):
        if os.path.isfile(os.path.join(apps_dir, name, 'metadata.yaml')):
            with open(os.path.join(apps_dir, name, 'icon.png'), 'wb') as f:
                f.write(icon(name))
            print('wrote', name)
