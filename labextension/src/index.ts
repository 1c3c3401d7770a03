export * from './version';
export { TensorViewModel, TensorViewView } from './tensorview';
