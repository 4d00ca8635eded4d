"""pyarrow's S3FileSystem against an mkv master, as a data team uses it (run by clients.test.ts).

usage: pyarrow_client.py signed|anonymous ENDPOINT BUCKET
Prints one JSON object of what it saw; an assertion that fails exits non-zero.
"""
import json
import sys

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

mode, endpoint, bucket = sys.argv[1:4]
if mode == 'signed':
    fs = pafs.S3FileSystem(access_key='client', secret_key='client-secret', endpoint_override=endpoint, scheme='http', region='us-east-1',
                           allow_bucket_creation=True)
else:
    fs = pafs.S3FileSystem(anonymous=True, endpoint_override=endpoint, scheme='http', region='us-east-1', allow_bucket_creation=True)
# A bucket is made before it is written into, as on S3 (an existing one is left as it is).
fs.create_dir(bucket)

rows = 400_000
table = pa.table({'id': pa.array(range(rows), pa.int64()), 'name': pa.array([f'row {i:07d}' for i in range(rows)])})
base = f'{bucket}/{mode}/data'
pq.write_table(table, f'{base}/part-0.parquet', filesystem=fs, compression='none')
pq.write_table(table.slice(0, 10), f'{base}/sub/part-1.parquet', filesystem=fs)
assert pq.read_table(f'{base}/part-0.parquet', filesystem=fs).equals(table), 'read back differs'
# Written again over itself (pyarrow overwrites in place): the new value is read.
pq.write_table(table.slice(0, 1000), f'{base}/part-0.parquet', filesystem=fs)
assert pq.read_table(f'{base}/part-0.parquet', filesystem=fs).equals(table.slice(0, 1000)), 'overwrite not read back'
pq.write_table(table, f'{base}/part-0.parquet', filesystem=fs, compression='none')

info = fs.get_file_info(f'{base}/part-0.parquet')
listed = sorted(each.path for each in fs.get_file_info(pafs.FileSelector(base, recursive=True)))
fs.delete_file(f'{base}/sub/part-1.parquet')
after_delete_file = sorted(each.path for each in fs.get_file_info(pafs.FileSelector(base, recursive=True)))
fs.delete_dir_contents(base)
after_delete_dir_contents = sorted(each.path for each in fs.get_file_info(pafs.FileSelector(base, recursive=True)))
print(json.dumps({
    'file_type': info.type.name,
    'size': info.size,
    'dir_type': fs.get_file_info(f'{bucket}/{mode}').type.name,
    'listed': listed,
    'after_delete_file': after_delete_file,
    'after_delete_dir_contents': after_delete_dir_contents,
}))
